/**
 * What API Gateway does before any Lambda runs, for the local HTTP server: find the
 * request's route in the route table (functions/shared/routeTable.ts), or answer 404
 * (unknown path) / 405 (known path, other method) without invoking anything. The
 * matching is @middy/http-router's, as in the handlers; the path parameters are
 * URL-decoded as API Gateway passes them.
 */
import httpRouterHandler from '@middy/http-router';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { CC1_ROUTES, REST_ROUTES, type RouteDef } from '../functions/shared/routeTable';

export interface ApiGatewayRoute {
  route: RouteDef;
  /** Which function API Gateway invokes. */
  api: 'restApi' | 'cc1Api';
  params: Record<string, string>;
}

/** A malformed escape (`%`, `%E0%A4%A`) stays as sent: the route's own check refuses it (400), never a URIError (500). */
const decodePathSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

const TABLE = [...REST_ROUTES.map((route) => ({ route, api: 'restApi' as const })), ...CC1_ROUTES.map((route) => ({ route, api: 'cc1Api' as const }))];

type Found = { route: RouteDef; api: ApiGatewayRoute['api']; raw: Record<string, string> } | undefined;
const routerOf = (method: (route: RouteDef) => RouteDef['method'] | 'ANY') =>
  httpRouterHandler<APIGatewayProxyEventV2, never>({
    routes: TABLE.map(({ route, api }) => ({
      method: method(route),
      path: route.path,
      handler: ((event: APIGatewayProxyEventV2) => ({ route, api, raw: event.pathParameters ?? {} })) as never,
    })),
    notFoundResponse: (() => undefined) as never,
  }) as unknown as (event: APIGatewayProxyEventV2) => Found;

const byMethod = routerOf((route) => route.method);
const anyMethod = routerOf(() => 'ANY');
const eventFor = (method: string, path: string) => ({ version: '2.0', requestContext: { http: { method, path } } }) as APIGatewayProxyEventV2;

/** The route of a request, its decoded path parameters, or whether the path exists at all (405 vs 404). */
export const apiGatewayRoute = (method: string, path: string): ApiGatewayRoute | { route: undefined; pathExists: boolean } => {
  const found = byMethod(eventFor(method, path));
  if (!found) return { route: undefined, pathExists: anyMethod(eventFor(method, path)) !== undefined };
  const params = Object.fromEntries(Object.entries(found.raw).map(([name, value]) => [name, decodePathSegment(value)]));
  return { route: found.route, api: found.api, params };
};
