/**
 * The REST API Lambda (SPEC 4.1): one function behind every route of the HTTP API.
 * API Gateway's JWT authorizer has verified the token; this reads its claims.
 * Routing is @middy/http-router over the route table; each route's work is in routes.ts.
 */
import { DomainError } from '../../domain/errors';
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { httpRouter, httpStack, json, type HttpEvent } from '../shared/http';
import { pathTrick, pathTrickMessage } from '../shared/pathSafety';
import { ROUTES } from './routes';

useHosts(hostsOverSsm);
const logger = serviceLogger();

const router = httpRouter(
  ROUTES.map((route) => ({
    ...route,
    handler: async (event, { caller, deps, writeKey }) => {
      const reply = await route.run({ caller, params: event.pathParameters ?? {}, query: event.queryStringParameters ?? {}, body: event.body, deps, ...(writeKey ? { writeKey } : {}) });
      return json(reply.status, reply.body);
    },
  })),
  (method, path) => `No route ${method} ${path}.`,
);

/** The routes that wait on a hypervisor or storage host (attach, detach, resize): their timeouts are the host's. */
const HYPERVISOR_WORK = /\/(attach|detach|resize)\/?$/;

export const handler = httpStack(
  async (event: HttpEvent, context) => {
    // Whatever API Gateway did with dot segments, a path that could name another route runs none.
    const trick = pathTrick(event.rawPath) ?? pathTrick(event.requestContext.http.path ?? '');
    if (trick) throw new DomainError('validation', pathTrickMessage(trick));
    return router(event, context);
  },
  { logger, idempotencyStore: () => container().idempotencyStore(), hypervisorWork: (event) => HYPERVISOR_WORK.test(event.rawPath) },
);
