/**
 * A path names one function or none (issue 12): dot segments, encoded slashes or dots and
 * backslashes are refused by the handlers' own routing, whatever API Gateway did with the
 * path before (resolved `get_list/../delete` into the `delete` route, or passed it raw).
 * The handlers run for real; a request that got past the check would reach the container,
 * which has no DynamoDB here, and answer something else than the refusal.
 */
import type { Context } from 'aws-lambda';
import { handler as cc1Api } from '../../functions/cc1Api/handler';
import { apiGatewayRoute } from '../../local/apiGatewayRouting';
import { handler as restApi } from '../../functions/restApi/handler';
import type { HttpEvent } from '../../functions/shared/http';
import { pathTrick } from '../../functions/shared/pathSafety';

describe('pathTrick', () => {
  test.each([
    '/user/storage_image/get_list/../delete/',
    '/user/storage_image/./delete/',
    '/storage-images/1/..',
    '/storage-images/..',
    '/storage-images/.',
    '/../storage-images',
    '/storage-images/1/%2e%2e/2',
    '/storage-images/%2E%2E/2',
    '/storage-images/1%2f..%2f2',
    '/user/storage_image/get_list%2F..%2Fdelete/',
    '/user/storage_image/delete%2f',
    '/storage-images/1%2E5',
    '/user/storage_image/get_list\\..\\delete/',
    '/storage-images/1%5c..%5c2',
  ])('refuses %s', (path) => {
    expect(pathTrick(path)).toEqual(expect.any(String));
  });

  test.each(['/storage-images', '/storage-images/12/attach', '/user/storage_image/get_list/', '/vms/5/disks', '/storage-images/a..b', '/storage-images/...', '/storage-images/%20', '/'])(
    'lets %s through',
    (path) => {
      expect(pathTrick(path)).toBeUndefined();
    },
  );

  test('routing alone would have sent a resolved path to another route: the check is what stops it', () => {
    expect(apiGatewayRoute('DELETE', new URL('/storage-images/1/../2', 'http://x').pathname).route?.path).toBe('/storage-images/{id}');
  });
});

const context = (): Context =>
  ({
    functionName: 'test',
    awsRequestId: 'req-1',
    getRemainingTimeInMillis: () => 10_000,
  }) as unknown as Context;

/** An API Gateway v2 event as the authorizer passes it: `rawPath` as sent, `http.path` and `routeKey` as resolved. */
const event = (method: string, rawPath: string, resolvedPath: string, routeKey: string, body?: unknown): HttpEvent =>
  ({
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: {
      accountId: '000000000000',
      apiId: 'unit',
      authorizer: { jwt: { claims: { sub: '42' }, scopes: [] } },
      domainName: 'unit',
      domainPrefix: 'unit',
      http: { method, path: resolvedPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'unit' },
      requestId: 'req-1',
      routeKey,
      stage: '$default',
      time: '01/Jan/2025:00:00:00 +0000',
      timeEpoch: 0,
    },
    isBase64Encoded: false,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  }) as HttpEvent;

const errorOf = (reply: { statusCode?: number; body?: string }) => ({ status: reply.statusCode, code: (JSON.parse(reply.body ?? '{}') as { error?: { code?: string } }).error?.code });

describe('the CC1 handler', () => {
  test.each([
    ['/user/storage_image/get_list/../delete/', '/user/storage_image/delete/'],
    ['/user/storage_image/delete/', '/user/storage_image/get_list/../delete/'],
    ['/user/storage_image/get_list%2f..%2fdelete/', '/user/storage_image/delete/'],
    ['/user/storage_image/%2e/delete/', '/user/storage_image/delete/'],
  ])('raw %s (resolved %s) runs no function: 404 not_found', async (rawPath, resolved) => {
    const reply = await cc1Api(event('POST', rawPath, resolved, 'POST /user/storage_image/{fn}/', { caller_id: 42, storage_image_id: 1 }), context());
    expect(errorOf(reply)).toEqual({ status: 404, code: 'not_found' });
  });
});

describe('the REST handler', () => {
  test.each([
    ['DELETE', '/storage-images/1/../2', '/storage-images/2', 'DELETE /storage-images/{id}'],
    ['DELETE', '/storage-images/2', '/storage-images/1/../2', 'DELETE /storage-images/{id}'],
    ['POST', '/storage-images/1/detach/../attach', '/storage-images/1/attach', 'POST /storage-images/{id}/attach'],
    ['GET', '/admin/%2e%2e/storage-images/2', '/storage-images/2', 'GET /storage-images/{id}'],
    ['DELETE', '/storage-images/1%2f..%2f2', '/storage-images/2', 'DELETE /storage-images/{id}'],
  ])('%s raw %s (resolved %s) runs no route: 400 validation', async (method, rawPath, resolved, routeKey) => {
    const reply = await restApi(event(method, rawPath, resolved, routeKey, method === 'POST' ? { vmId: 5 } : undefined), context());
    expect(errorOf(reply)).toEqual({ status: 400, code: 'validation' });
  });
});
