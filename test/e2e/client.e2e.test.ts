/**
 * The portal client (client/) against the local stack as `npm start` runs it: an image's
 * whole life through typed calls, typed errors, the built package under plain Node, and
 * its retries against real faults: the database killed (503 + Retry-After until it is
 * back) and an answer lost after the work was done (the same Idempotency-Key on the
 * retry gets the first answer again: one image, not two). Every answer the client gets
 * is checked against docs/openapi.yaml.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorageImagesClient, errorCode, etagOf, ifMatch, type Image, type StorageImagesClient, type StorageImagesClientOptions } from '../../client/src';
import { checkRestReply } from '../support/e2eOpenapi';
import { REPO_ROOT, startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

jest.setTimeout(120_000);

/** One attempt as the client sent it (below its retries), and what came back. */
interface Attempt {
  method: string;
  path: string;
  key: string | null;
  sentAt: number;
  status?: number;
  retryAfter?: string | null;
  answeredAt?: number;
}

let stack: E2eStack;
let attempts: Attempt[] = [];
const contractErrors: string[] = [];

/** The fetch under the client's retries: records each attempt and checks its answer against the OpenAPI. */
const recordingFetch = async (request: Request): Promise<Response> => {
  const url = new URL(request.url);
  const attempt: Attempt = { method: request.method, path: url.pathname, key: request.headers.get('idempotency-key'), sentAt: Date.now() };
  attempts.push(attempt);
  const response = await fetch(request);
  Object.assign(attempt, { status: response.status, retryAfter: response.headers.get('retry-after'), answeredAt: Date.now() });
  if (request.url.startsWith(stack.url)) {
    const text = await response.clone().text();
    try {
      checkRestReply(request.method, url.pathname + url.search, response.status, text ? JSON.parse(text) : undefined);
    } catch (error) {
      contractErrors.push(String(error)); // not thrown here: the client would take it for a network error
    }
  }
  return response;
};

const clientFor = async (userId: number, options: Partial<StorageImagesClientOptions> = {}): Promise<StorageImagesClient> =>
  createStorageImagesClient({ baseUrl: stack.url, token: await stack.token(userId), fetch: recordingFetch, ...options });

const idText = (image: { id: number }) => ({ path: { id: String(image.id) } });

const namedInList = async (api: StorageImagesClient, name: string): Promise<Image[]> => {
  const { data } = await api.GET('/storage-images', { params: { query: { limit: 1000 } } });
  return data!.items.filter((i) => i.name === name);
};

beforeAll(async () => {
  stack = await startE2eStack();
});
afterAll(() => stack?.stop());
beforeEach(() => (attempts = []));
afterEach(() => expect(contractErrors).toEqual([]));

test("an image's life through the client: create, list, get, edit, attach, detach, revoke", async () => {
  const USER = 2101;
  const VM = 21_001;
  const api = await clientFor(USER);

  const created = await api.POST('/storage-images', { body: { name: 'client disk', diskController: 'virtio', sizeMb: 4 } });
  expect(created.response.status).toBe(201);
  const image = created.data!;
  expect(image).toMatchObject({ name: 'client disk', userId: USER, state: 'adding', filesystem: 'raw', description: '' });
  expect(attempts[0]!.key).toEqual(expect.any(String)); // the client gave the write a key

  const ready = await waitFor(
    () => api.GET('/storage-images/{id}', { params: idText(image) }),
    (r) => r.data?.state !== 'adding',
  );
  expect(ready.data!.state).toBe('ok');
  expect(await namedInList(api, 'client disk')).toEqual([ready.data]);

  // The ETag of what was read goes back as If-Match (no header while the server sends none).
  const edited = await api.PATCH('/storage-images/{id}', { params: idText(image), body: { name: 'renamed', description: 'by the client' }, headers: ifMatch(etagOf(ready.response)) });
  expect(edited.data).toMatchObject({ id: image.id, name: 'renamed', description: 'by the client' });

  await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
  const attached = await api.POST('/storage-images/{id}/attach', { params: idText(image), body: { vmId: VM }, headers: ifMatch(etagOf(edited.response)) });
  expect(attached.data).toMatchObject({ vmId: VM, diskDev: 'vdb' });
  expect((await api.GET('/storage-images', { params: { query: { vmId: String(VM) } } })).response.status).toBe(200);

  const detached = await api.POST('/storage-images/{id}/detach', { params: idText(image), body: { vmId: VM }, headers: ifMatch(etagOf(attached.response)) });
  expect(detached.data).toMatchObject({ vmId: null, diskDev: null });

  const history = await api.GET('/storage-images/{id}/history', { params: idText(image) });
  expect(history.data!.items.map((e) => e.type)).toEqual([
    'StorageImageCreated', 'StorageImageDiskReady', 'StorageImageEdited', 'StorageImageAttachRequested', 'StorageImageAttached', 'StorageImageDetached',
  ]);

  const revoked = await api.DELETE('/storage-images/{id}', { params: idText(image), headers: ifMatch(etagOf(detached.response)) });
  expect(revoked.data!.state).toBe('locked');
  expect(await namedInList(api, 'renamed')).toEqual([]);
  const gone = await api.GET('/storage-images/{id}', { params: idText(image) });
  expect(errorCode(gone.error)).toBe('image_get');
  // Every write had its own key; no read had one.
  const writes = attempts.filter((a) => a.method !== 'GET');
  expect(new Set(writes.map((a) => a.key)).size).toBe(writes.length);
  expect(attempts.filter((a) => a.method === 'GET' && a.key !== null)).toEqual([]);
});

test('errors come back typed, not thrown: a 404 and a 400 validation answer, each sent once', async () => {
  const api = await clientFor(2102);
  const missing = await api.GET('/storage-images/{id}', { params: { path: { id: '999999999' } } });
  expect(missing.response.status).toBe(404);
  expect(missing.data).toBeUndefined();
  expect(errorCode(missing.error)).toBe('image_get');

  const blank = await api.POST('/storage-images', { body: { name: '   ', diskController: 'virtio', sizeMb: 4 } });
  expect(blank.response.status).toBe(400);
  expect(errorCode(blank.error)).toBe('validation');
  expect(attempts.map((a) => a.status)).toEqual([404, 400]);

  const noToken = createStorageImagesClient({ baseUrl: stack.url, fetch: recordingFetch });
  const refused = await noToken.GET('/quota');
  expect(refused.response.status).toBe(401);
  expect(refused.error).toEqual({ message: 'Unauthorized' });
});

test('the built package works from plain Node (CommonJS dist/, as a portal would require it)', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cc1-client-dist-'));
  try {
    const tsc = spawnSync(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'client/tsconfig.json', '--outDir', out], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    const script = `
      const { createStorageImagesClient } = require(${JSON.stringify(out)});
      createStorageImagesClient({ baseUrl: process.argv[1], token: process.argv[2] })
        .GET('/disk-controllers').then(({ data }) => console.log(data.items.map((c) => c.name).join(',')));`;
    // NODE_PATH stands in for the package's own node_modules: openapi-fetch from the root install.
    const run = spawnSync(process.execPath, ['-e', script, stack.url, await stack.token(2103)], {
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: join(REPO_ROOT, 'node_modules') },
    });
    expect({ stdout: run.stdout.trim(), stderr: run.stderr }).toEqual({ stdout: 'scsi,virtio,ide,sata,usb', stderr: '' });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

/** A proxy in front of the stack that, once, lets a write through and then loses its answer. */
const answerLosingProxy = async (loseAs: 'a 503' | 'a reset connection') => {
  let armed = true;
  const upstreamAnswers: Array<{ status: number; body: any }> = [];
  const read = (req: IncomingMessage) => new Promise<string>((r) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => r(body));
  });
  const server: Server = createServer(async (req, res) => {
    const body = await read(req);
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'content-type', 'idempotency-key', 'if-match']) if (typeof req.headers[name] === 'string') headers[name] = req.headers[name] as string;
    const upstream = await fetch(stack.url + req.url, { method: req.method, headers, body: body || undefined });
    const text = await upstream.text();
    if (armed && req.method !== 'GET') {
      armed = false;
      upstreamAnswers.push({ status: upstream.status, body: JSON.parse(text) });
      if (loseAs === 'a reset connection') return void req.socket.destroy();
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      return void res.end(JSON.stringify({ error: { code: 'timeout', message: 'the answer was lost on the way' } }));
    }
    res.writeHead(upstream.status, { 'content-type': 'application/json' });
    res.end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, upstreamAnswers, close: () => new Promise<void>((r) => server.close(() => r())) };
};

test.each(['a 503', 'a reset connection'] as const)(
  'an answer lost as %s after the image was made: the retry carries the same Idempotency-Key and gets that image, not a second one',
  async (loseAs) => {
    const proxy = await answerLosingProxy(loseAs);
    try {
      const user = 2104;
      const api = await clientFor(user, { baseUrl: proxy.url });
      const name = `lost answer ${loseAs}`;
      const started = Date.now();
      const created = await api.POST('/storage-images', { body: { name, diskController: 'virtio', sizeMb: 4 } });

      expect(created.response.status).toBe(201);
      // The service did the work on the first attempt; the retry got that answer again.
      expect(proxy.upstreamAnswers).toEqual([{ status: 201, body: expect.objectContaining({ name }) }]);
      expect(created.data!.id).toBe(proxy.upstreamAnswers[0]!.body.id);
      expect(attempts).toHaveLength(2);
      expect(attempts[1]!.key).toBe(attempts[0]!.key);
      if (loseAs === 'a 503') expect(Date.now() - started).toBeGreaterThanOrEqual(1_000); // its Retry-After
      expect((await namedInList(await clientFor(user), name)).map((i) => i.id)).toEqual([created.data!.id]);
    } finally {
      await proxy.close();
    }
  },
);

/** Every process below `pid` (ps: pid, ppid). */
const descendants = (pid: number): number[] => {
  const rows = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const below = (parent: number): number[] => rows.filter(([, ppid]) => ppid === parent).flatMap(([child]) => [child, ...below(child)]);
  return below(pid);
};
const isJava = (pid: number) => /java/.test(spawnSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' }).stdout);

// Last: the stack's database dies here (the service restarts it on the same data).
test('the database killed: the client waits out the 503s by their Retry-After and the create lands once', async () => {
  const user = 2105;
  const api = await clientFor(user, { retry: { attempts: 30, maxTotalMs: 90_000 } });
  const before = (await api.POST('/storage-images', { body: { name: 'before the outage', diskController: 'virtio', sizeMb: 4 } })).data!;
  const java = descendants(stack.pid).filter(isJava);
  expect(java).toHaveLength(1);
  process.kill(java[0]!, 'SIGKILL');
  const token = await stack.token(user);
  await waitFor(() => stack.call('GET', '/quota', { token }), (r) => r.status === 503, 30_000, 20);
  attempts = [];

  const [created, read] = await Promise.all([
    api.POST('/storage-images', { body: { name: 'through the outage', diskController: 'virtio', sizeMb: 4 } }),
    api.GET('/storage-images/{id}', { params: idText(before) }),
  ]);

  expect(created.response.status).toBe(201);
  expect(read.data).toMatchObject({ id: before.id, name: 'before the outage' });
  for (const method of ['POST', 'GET']) {
    const mine = attempts.filter((a) => a.method === method);
    expect(mine[0]!.status).toBe(503);
    expect(mine.at(-1)!.status).toBe(method === 'POST' ? 201 : 200);
    // Each retry waited at least the Retry-After of the 503 before it.
    for (let i = 1; i < mine.length; i++) {
      expect(Number(mine[i - 1]!.retryAfter)).toBeGreaterThan(0);
      expect(mine[i]!.sentAt - mine[i - 1]!.answeredAt!).toBeGreaterThanOrEqual(Number(mine[i - 1]!.retryAfter) * 1000 - 5);
    }
    if (method === 'POST') expect(new Set(mine.map((a) => a.key)).size).toBe(1);
  }
  expect(attempts.every((a) => a.status === 503 || a.status === 200 || a.status === 201)).toBe(true);
  expect((await namedInList(api, 'through the outage')).map((i) => i.id)).toEqual([created.data!.id]);
});
