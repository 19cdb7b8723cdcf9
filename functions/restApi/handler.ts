/**
 * The REST API Lambda (SPEC 4.1): one function behind every route of the HTTP API.
 * API Gateway's JWT authorizer has verified the token; this reads its claims.
 * Routing is @middy/http-router over the route table; each route's work is in routes.ts.
 */
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { httpRouter, httpStack, json } from '../shared/http';
import { ROUTES } from './routes';

useHosts(hostsOverSsm);
const logger = serviceLogger();

export const handler = httpStack(
  httpRouter(
    ROUTES.map((route) => ({
      ...route,
      handler: async (event, { caller, deps }) => {
        const reply = await route.run({ caller, params: event.pathParameters ?? {}, query: event.queryStringParameters ?? {}, body: event.body, deps });
        return json(reply.status, reply.body);
      },
    })),
    (method, path) => `No route ${method} ${path}.`,
  ),
  { logger, idempotencyStore: () => container().idempotencyStore() },
);
