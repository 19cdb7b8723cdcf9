/**
 * The REST API Lambda (SPEC 4.1): one function behind every route of the HTTP API.
 * API Gateway's JWT authorizer has verified the token; this reads its claims.
 */
import { DomainError } from '../../domain/errors';
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { httpStack, json, type HttpEvent } from '../shared/http';
import { callerFromClaims } from '../shared/identity';
import { pathTrick, pathTrickMessage } from '../shared/pathSafety';
import { findRouteByKey, matchRoute } from './routes';

useHosts(hostsOverSsm);
const logger = serviceLogger();

export const handler = httpStack(
  async (event: HttpEvent) => {
    const method = event.requestContext.http.method;
    // Whatever API Gateway did with dot segments, a path that could name another route runs none.
    const trick = pathTrick(event.rawPath) ?? pathTrick(event.requestContext.http.path ?? '');
    if (trick) throw new DomainError('validation', pathTrickMessage(trick));
    const matched = routeOf(event);
    if (!matched) throw new DomainError('not_found', `No route ${method} ${event.rawPath}.`);
    const { config, deps } = container();
    const caller = callerFromClaims(event.requestContext.authorizer?.jwt?.claims, config.userIdClaim);
    const params = event.pathParameters ?? matchParams(method, event.rawPath);
    const reply = await matched.run({ caller, params, query: event.queryStringParameters ?? {}, body: event.body, deps });
    return json(reply.status, reply.body);
  },
  {
    logger,
    idempotencyStore: () => container().idempotencyStore(),
    hypervisorWork: (event) => routeOf(event)?.hypervisorWork === true,
  },
);

const routeOf = (event: HttpEvent) => findRouteByKey(event.routeKey) ?? matchRoute(event.requestContext.http.method, event.rawPath).route;

const matchParams = (method: string, path: string): Record<string, string> => {
  const m = matchRoute(method, path);
  return m.route ? m.params : {};
};
