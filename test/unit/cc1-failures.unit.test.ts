/**
 * The CC1 API answers every outcome a CC1 portal can meet with HTTP 200 and a CC1
 * status, as CC1's views did (SPEC 4.7): an internal failure and a timeout are
 * `cm_error`, never a 500 or a 503 in REST form. API Gateway's own answers stay:
 * 401 for a missing token, 404 for an unknown function.
 *
 * The failures are real: the service's DynamoDB client talks to a port where nothing
 * listens (an unexpected error), or to a server that takes the connection and never
 * answers (the function runs out of time, as middy times it on Lambda).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { handler as cc1Api } from '../../functions/cc1Api/handler';
import { buildContainer, useContainer } from '../../functions/shared/container';
import { readConfig } from '../../functions/shared/config';
import type { HttpEvent } from '../../functions/shared/http';

const contextWith = (remainingMs: number): Context =>
  ({ awsRequestId: 'test', functionName: 'cc1Api', getRemainingTimeInMillis: () => remainingMs }) as unknown as Context;

const cc1Request = (path: string, body: unknown, claims: Record<string, string> | null = { sub: '42' }): HttpEvent =>
  ({
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: {
      http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'jest' },
      ...(claims ? { authorizer: { jwt: { claims, scopes: [] } } } : {}),
      requestId: 'r',
    },
    isBase64Encoded: false,
    body: JSON.stringify(body),
  }) as unknown as HttpEvent;

/** A DynamoDB client of the service pointed at `endpoint`, one attempt per call. */
const serviceOn = (endpoint: string) => {
  const dynamo = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
  useContainer(buildContainer({ ...readConfig({}), dynamodbEndpoint: endpoint }, { dynamo }));
  return dynamo;
};

afterEach(() => useContainer(undefined));

const bodyOf = (reply: { body?: string }) => JSON.parse(reply.body ?? 'null') as { status?: string; data?: unknown; error?: { code?: string } };

describe('an internal failure (the database cannot be reached)', () => {
  let dynamo: DynamoDBClient;
  beforeEach(() => {
    dynamo = serviceOn('http://127.0.0.1:1');
  });
  afterEach(() => dynamo.destroy());

  test.each([
    ['/user/storage_image/get_list/', { caller_id: 42 }],
    ['/user/storage_image/get_by_id/', { caller_id: 42, storage_image_id: 7 }],
    ['/user/storage_image/create/', { caller_id: 42, name: 'd', size: 1, disk_controller: 1 }],
  ])('%s answers HTTP 200 {status: "cm_error"}', async (path, body) => {
    const reply = await cc1Api(cc1Request(path, body), contextWith(10_000));
    expect({ http: reply.statusCode, status: bodyOf(reply).status }).toEqual({ http: 200, status: 'cm_error' });
    expect(bodyOf(reply).data).toMatch(/^service_unavailable: /);
  });

  test('a refusal that is the caller\'s doing keeps its own CC1 code (not cm_error)', async () => {
    const reply = await cc1Api(cc1Request('/user/storage_image/get_list/', { caller_id: 43 }), contextWith(10_000));
    expect({ http: reply.statusCode, status: bodyOf(reply).status }).toEqual({ http: 200, status: 'user_permission' });
  });

  test('API Gateway\'s answers stay: no token is 401, an unknown function 404', async () => {
    const noToken = await cc1Api(cc1Request('/user/storage_image/get_list/', { caller_id: 42 }, null), contextWith(10_000));
    expect(noToken.statusCode).toBe(401);
    expect((await cc1Api(cc1Request('/user/storage_image/format/', { caller_id: 42 }), contextWith(10_000))).statusCode).toBe(404);
  });
});

describe('a timeout (the database takes the request and never answers)', () => {
  let server: Server;
  const sockets = new Set<Socket>();
  let dynamo: DynamoDBClient;

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  beforeEach(() => {
    const { port } = server.address() as { port: number };
    dynamo = serviceOn(`http://127.0.0.1:${port}`);
  });
  afterEach(() => dynamo.destroy());
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('a read that runs out of the function\'s time answers HTTP 200 {status: "cm_error"}', async () => {
    const reply = await cc1Api(cc1Request('/user/storage_image/get_list/', { caller_id: 42 }), contextWith(300));
    expect({ http: reply.statusCode, status: bodyOf(reply).status }).toEqual({ http: 200, status: 'cm_error' });
    expect(bodyOf(reply).data).toMatch(/^timeout: /);
  });

  test('an admin function that runs out of time is cm_error too', async () => {
    const reply = await cc1Api(cc1Request('/admin_cm/storage_image/get_list/', { caller_id: 42 }, { sub: '42', 'cognito:groups': '[admin]' }), contextWith(300));
    expect({ http: reply.statusCode, status: bodyOf(reply).status }).toEqual({ http: 200, status: 'cm_error' });
  });
});
