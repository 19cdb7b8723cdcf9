/**
 * The portal client (client/): its generated types match docs/openapi.yaml now, its
 * package pins what the root installs, and its retry, Idempotency-Key, token and ETag
 * rules, over real HTTP against a scripted server on 127.0.0.1 (the service itself is
 * in test/e2e/client.e2e.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createStorageImagesClient, errorCode, etagOf, ifMatch, retryAfterMs, type StorageImagesClientOptions } from '../../client/src';
import { REPO_ROOT } from '../support/e2eStack';

describe('generated from docs/openapi.yaml', () => {
  test('client/src/schema.ts is what openapi-typescript generates from the spec now (else: npm run client:generate)', () => {
    // The root script itself, with openapi-typescript's --check: one source for the flags.
    const run = spawnSync('npm', ['run', '-s', 'client:generate', '--', '--check'], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (run.status !== 0) {
      throw new Error(`client/src/schema.ts differs from docs/openapi.yaml: run \`npm run client:generate\` and commit it\n${run.stdout}${run.stderr}`);
    }
  });

  test("the client's package pins the same openapi-fetch as the root install it is tested with", () => {
    const root = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    const client = JSON.parse(readFileSync(join(REPO_ROOT, 'client', 'package.json'), 'utf8'));
    for (const [name, version] of Object.entries(client.dependencies as Record<string, string>)) {
      expect({ name, version }).toEqual({ name, version: root.devDependencies[name] });
    }
  });
});

/** What one request to the scripted server carried. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}
/** A scripted answer: status + headers + body, or 'drop' (the socket is destroyed: a network error). */
type Script = { status: number; headers?: Record<string, string>; body?: unknown } | 'drop';

let server: Server;
let baseUrl: string;
let script: Script[] = [];
let seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const next = script.shift() ?? { status: 200, body: { items: [] } };
      if (next === 'drop') return void req.socket.destroy();
      res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers });
      res.end(next.body === undefined ? '' : JSON.stringify(next.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => ((script = []), (seen = [])));

const IMAGE = {
  id: 5, userId: 42, name: 'data', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 4, state: 'ok', progress: 100,
  creationDate: '2026-01-01T00:00:00.000Z', vmId: null, diskDev: null, version: 3, attachedAt: null,
} as const;
const unavailable = (retryAfter: string) => ({ status: 503, headers: { 'retry-after': retryAfter }, body: { error: { code: 'service_unavailable', message: 'down' } } });
const client = (options: Partial<StorageImagesClientOptions> = {}) => createStorageImagesClient({ baseUrl, token: 'tkn', retry: { baseDelayMs: 5 }, ...options });
const create = (api = client(), headers?: Record<string, string>) =>
  api.POST('/storage-images', { body: { name: 'data', diskController: 'virtio', sizeMb: 4 }, params: { header: headers } });

describe('retries', () => {
  test('a 503 is retried after its Retry-After, up to the attempts; the last 503 is the answer', async () => {
    script = [unavailable('0'), unavailable('0'), unavailable('0')];
    const { error, response } = await client({ retry: { attempts: 3 } }).GET('/quota');
    expect(response.status).toBe(503);
    expect(errorCode(error)).toBe('service_unavailable');
    expect(seen).toHaveLength(3);
  });

  test('Retry-After is waited for (1 s), then the answer is the retry', async () => {
    script = [unavailable('1'), { status: 200, body: { limitMb: 10, usedMb: 0 } }];
    const started = Date.now();
    const { data } = await client().GET('/quota');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(data).toEqual({ limitMb: 10, usedMb: 0 });
    expect(seen).toHaveLength(2);
  });

  test('a Retry-After past the time budget is not waited for: the 503 comes back at once', async () => {
    script = [unavailable('5')];
    const started = Date.now();
    const { response } = await client({ retry: { maxTotalMs: 1_000 } }).GET('/quota');
    expect(response.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(seen).toHaveLength(1);
  });

  test.each([400, 401, 403, 404, 409, 412, 422, 429])('a %i is an answer, never retried', async (status) => {
    script = [{ status, body: { error: { code: 'validation', message: 'no' } } }];
    const { response } = await create();
    expect(response.status).toBe(status);
    expect(seen).toHaveLength(1);
  });

  test('a network error is retried for a read, and for a write with its Idempotency-Key', async () => {
    script = ['drop', { status: 200, body: { limitMb: 1, usedMb: 0 } }];
    expect((await client().GET('/quota')).data).toEqual({ limitMb: 1, usedMb: 0 });
    expect(seen).toHaveLength(2);
    seen = [];
    script = ['drop', 'drop', { status: 201, body: IMAGE }];
    expect((await create()).data).toEqual(IMAGE);
    expect(seen).toHaveLength(3);
  });

  // (fetch's TypeError is of another realm than jest's: matched by message.)
  test('after the last attempt a network error is thrown, as fetch throws it', async () => {
    script = ['drop', 'drop'];
    await expect(client({ retry: { attempts: 2 } }).GET('/quota')).rejects.toThrow('fetch failed');
    expect(seen).toHaveLength(2);
  });

  test('a write without an Idempotency-Key is sent once: neither a 503 nor a network error repeats it', async () => {
    const api = client({ idempotencyKeys: false });
    script = [unavailable('0')];
    expect((await create(api)).response.status).toBe(503);
    script = ['drop'];
    await expect(create(api)).rejects.toThrow('fetch failed');
    expect(seen).toHaveLength(2);
    expect(seen.map((s) => s.headers['idempotency-key'])).toEqual([undefined, undefined]);
  });

  test('retry: false sends every call once', async () => {
    script = [unavailable('0')];
    expect((await client({ retry: false }).GET('/quota')).response.status).toBe(503);
    expect(seen).toHaveLength(1);
  });

  test('an abort stops the waiting: no retry after it', async () => {
    script = [unavailable('5')];
    const abort = new AbortController();
    const call = client().GET('/quota', { signal: abort.signal });
    await new Promise((r) => setTimeout(r, 100));
    abort.abort();
    await expect(call).rejects.toThrow();
    expect(seen).toHaveLength(1);
  });
});

describe('Idempotency-Key, token, headers', () => {
  test('every write gets a fresh key, the same one on each of its retries; reads get none', async () => {
    script = [unavailable('0'), { status: 201, body: IMAGE }, { status: 201, body: IMAGE }, { status: 200, body: IMAGE }];
    await create();
    await create();
    await client().GET('/storage-images/{id}', { params: { path: { id: '5' } } });
    const keys = seen.map((s) => s.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
    expect(keys[3]).toBeUndefined();
    expect(seen.slice(0, 3).map((s) => JSON.parse(s.body))).toEqual(Array(3).fill({ name: 'data', diskController: 'virtio', sizeMb: 4 }));
  });

  test("the caller's own key is sent as is, on every attempt", async () => {
    script = [unavailable('0'), { status: 201, body: IMAGE }];
    await create(client(), { 'Idempotency-Key': 'portal-order-17' });
    expect(seen.map((s) => s.headers['idempotency-key'])).toEqual(['portal-order-17', 'portal-order-17']);
  });

  test('the token goes as a Bearer on every attempt, asked again each time when it is a function', async () => {
    let n = 0;
    script = [unavailable('0'), { status: 200, body: { limitMb: 1, usedMb: 0 } }];
    await client({ token: async () => `t${++n}`, headers: { 'x-portal': 'p1' } }).GET('/quota');
    expect(seen.map((s) => [s.headers.authorization, s.headers['x-portal']])).toEqual([['Bearer t1', 'p1'], ['Bearer t2', 'p1']]);
  });

  test('the base URL may end with a slash', async () => {
    await client({ baseUrl: `${baseUrl}/` }).GET('/storage-images', { params: { query: { state: 'ok', limit: 2 } } });
    expect(seen[0]!.url).toBe('/storage-images?state=ok&limit=2');
  });
});

describe('ETag and If-Match', () => {
  test('the ETag of an answer goes back as If-Match, unchanged; no ETag, no If-Match', async () => {
    script = [{ status: 200, headers: { etag: '"3"' }, body: IMAGE }, { status: 200, body: IMAGE }, { status: 200, body: IMAGE }];
    const api = client();
    const got = await api.GET('/storage-images/{id}', { params: { path: { id: '5' } } });
    const etag = etagOf(got.response);
    expect(etag).toBe('"3"');
    await api.PATCH('/storage-images/{id}', { params: { path: { id: '5' } }, body: { name: 'renamed' }, headers: ifMatch(etag) });
    await api.DELETE('/storage-images/{id}', { params: { path: { id: '5' } }, headers: ifMatch(etagOf(new Response(null))) });
    expect(seen.map((s) => s.headers['if-match'])).toEqual([undefined, '"3"', undefined]);
  });
});

test('retryAfterMs reads delta-seconds and HTTP dates, and nothing else', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  expect(retryAfterMs('2', now)).toBe(2_000);
  expect(retryAfterMs(' 0 ', now)).toBe(0);
  expect(retryAfterMs('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3_000);
  expect(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  expect(retryAfterMs('-1', now)).toBeUndefined();
  expect(retryAfterMs('soon', now)).toBeUndefined();
  expect(retryAfterMs(null, now)).toBeUndefined();
});

test('errorCode reads the CC1 error shape only', () => {
  expect(errorCode({ error: { code: 'image_get', message: 'x' } })).toBe('image_get');
  expect(errorCode({ message: 'Unauthorized' })).toBeUndefined();
  expect(errorCode(undefined)).toBeUndefined();
  expect(errorCode('text')).toBeUndefined();
});
