/**
 * The handlers route by the route table (functions/shared/routeTable.ts) through
 * @middy/http-router: every route of the table reaches its handler, on the path
 * API Gateway sends (with or without CC1's trailing slash), and anything else is
 * refused as not_found before any data is touched.
 */
import type { Context } from 'aws-lambda';
import { DomainError } from '../../domain/errors';
import { handler as cc1Api } from '../../functions/cc1Api/handler';
import { handler as restApi } from '../../functions/restApi/handler';
import { buildContainer, useContainer } from '../../functions/shared/container';
import { readConfig } from '../../functions/shared/config';
import type { HttpEvent } from '../../functions/shared/http';
import { CC1_ROUTES, REST_ROUTES, routeKeyOf } from '../../functions/shared/routeTable';

const context = { awsRequestId: 'test', functionName: 'test', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;

/** Deps that refuse at first use with a code no router produces: a request that gets there was routed. */
const REACHED = 'hypervisor_unavailable';
beforeAll(() => {
  const real = buildContainer(readConfig({}));
  const refusing = new Proxy({}, { get: () => { throw new DomainError(REACHED, 'deps reached'); } });
  useContainer({ ...real, deps: refusing as typeof real.deps });
});
afterAll(() => useContainer(undefined));

const request = (method: string, path: string, body?: unknown): HttpEvent =>
  ({
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: {
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'jest' },
      authorizer: { jwt: { claims: { sub: '42', 'cognito:groups': '[admin portal]' }, scopes: [] } },
      requestId: 'r',
    },
    isBase64Encoded: false,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }) as unknown as HttpEvent;

const codeOf = (reply: { body?: string }): string | undefined => (JSON.parse(reply.body ?? '{}') as { error?: { code?: string } }).error?.code;

describe('restApi', () => {
  test.each(REST_ROUTES.map(routeKeyOf))('%s reaches its route', async (key) => {
    const [method, template] = key.split(' ') as [string, string];
    const path = template.replace('{id}', '7').replace('{vmId}', '5');
    const body = method === 'POST' || method === 'PATCH' ? {} : undefined;
    const reply = await restApi(request(method, path, body), context);
    expect(codeOf(reply)).not.toBe('not_found');
    expect(reply.statusCode).not.toBe(500);
  });

  test('path parameters come from the template: /storage-images/7 is image 7', async () => {
    const reply = await restApi(request('GET', '/storage-images/7/'), context);
    expect(codeOf(reply)).toBe(REACHED); // an id that parsed; a bad one is a 400 before the deps
    expect(codeOf(await restApi(request('GET', '/storage-images/x7'), context))).toBe('validation');
  });

  test('a path or method outside the table is 404 not_found', async () => {
    for (const [method, path] of [['GET', '/storage-imagez'], ['PUT', '/storage-images/7'], ['GET', '/storage-images/7/history/x']] as const) {
      const reply = await restApi(request(method, path), context);
      expect({ path, status: reply.statusCode, code: codeOf(reply) }).toEqual({ path, status: 404, code: 'not_found' });
    }
  });

  test('a body without a JSON content type is still parsed as JSON; a request without a body skips the parser', async () => {
    const event = request('POST', '/storage-images', { name: 'd', diskController: 'virtio', sizeMb: 0 });
    event.headers = { 'content-type': 'application/x-www-form-urlencoded' };
    expect(codeOf(await restApi(event, context))).toBe('image_invalid_size');
    const deleted = request('DELETE', '/storage-images/7');
    expect(codeOf(await restApi(deleted, context))).toBe(REACHED);
  });
});

describe('cc1Api', () => {
  test.each(CC1_ROUTES.map((r) => r.path))('%s/ reaches its CC1 function', async (path) => {
    const reply = await cc1Api(request('POST', `${path}/`, { caller_id: 42, storage_image_id: 7, vm_id: 5 }), context);
    expect(reply.statusCode).toBe(200);
  });

  test('an unknown CC1 function is 404 not_found', async () => {
    const reply = await cc1Api(request('POST', '/user/storage_image/format_disk/', { caller_id: 42 }), context);
    expect(reply.statusCode).toBe(404);
    expect(codeOf(reply)).toBe('not_found');
  });
});
