/**
 * Hostile Idempotency-Key headers and a database that goes away (issue 19), through the
 * local HTTP server with the real handlers, idempotency layer and DynamoDB Local.
 * - An empty key was hashed as the empty string: user 7402's create got user 7401's
 *   image. Keys are now 1..255 printable characters, else 400, and scoped to the caller.
 * - With the database killed (kill -9 of its JVM), every request answered 500 `internal`;
 *   now 503 `service_unavailable` with Retry-After (REST), `cm_error` (CC1 API).
 */
import '../../local/localDefaults';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { signLocalToken } from '../../local/jwt';
import { startLocalStack, type LocalStack } from '../../local/stack';

let stack: LocalStack;
let dataDir: string;

beforeAll(async () => {
  // Its own DynamoDB Local (a data folder), so the last test can kill it without harming other files.
  dataDir = mkdtempSync(join(tmpdir(), 'cc1-idem-'));
  stack = await startLocalStack({ hypervisor: 'simulated', dataDir });
});

afterAll(async () => {
  await stack?.close().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

const token = (userId: number) => signLocalToken({ userId });

const call = async (userId: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(stack.url + path, {
    method,
    headers: { authorization: `Bearer ${await token(userId)}`, 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: text ? JSON.parse(text) : undefined };
};

const disk = (name: string) => ({ name, diskController: 'virtio', filesystem: 'raw', sizeMb: 1 });
const mine = async (userId: number) => ((await call(userId, 'GET', '/storage-images')).json as { items: { id: number; userId: number }[] }).items;

test('an empty Idempotency-Key is refused with 400 for every caller: no image is created, nobody gets another caller\'s', async () => {
  for (const userId of [7401, 7402]) {
    const reply = await call(userId, 'POST', '/storage-images', disk('empty key'), { 'idempotency-key': '' });
    expect({ status: reply.status, code: reply.json.error.code }).toEqual({ status: 400, code: 'validation' });
    expect(await mine(userId)).toEqual([]);
  }
});

test('a key of 255 printable characters is accepted; 256, a blank one, or a control character is refused', async () => {
  const at = await call(7403, 'POST', '/storage-images', disk('at the limit'), { 'idempotency-key': 'k'.repeat(255) });
  expect(at.status).toBe(201);
  for (const key of ['k'.repeat(256), '   ', 'a\tb']) {
    const past = await call(7403, 'POST', '/storage-images', disk('past the limit'), { 'idempotency-key': key });
    expect({ key: key.length, status: past.status, code: past.json.error.code }).toEqual({ key: key.length, status: 400, code: 'validation' });
  }
  expect((await mine(7403)).length).toBe(1);
});

test('two callers with the same key each get their own image; the same caller\'s retry gets the first answer', async () => {
  const headers = { 'idempotency-key': 'shared-key-1' };
  const a = await call(7404, 'POST', '/storage-images', disk('a'), headers);
  const b = await call(7405, 'POST', '/storage-images', disk('a'), headers);
  expect([a.status, b.status]).toEqual([201, 201]);
  expect([a.json.userId, b.json.userId]).toEqual([7404, 7405]);
  expect(a.json.id).not.toBe(b.json.id);
  const again = await call(7404, 'POST', '/storage-images', disk('a'), headers);
  expect(again.json.id).toBe(a.json.id);
  expect((await mine(7404)).length).toBe(1);
});

/** What a crash between the create's commit and the completion of its idempotency record leaves: no record (it expired). */
const forgetIdempotencyRecords = async () => {
  const TableName = `${stack.dynamo.prefix}-control`;
  const { Items = [] } = await stack.dynamo.client.send(new ScanCommand({ TableName, ConsistentRead: true }));
  // Powertools' records: the items with its `status` (INPROGRESS / COMPLETED).
  const records = Items.filter((item) => item.status?.S !== undefined && item.expiration !== undefined);
  for (const item of records) await stack.dynamo.client.send(new DeleteItemCommand({ TableName, Key: { pk: item.pk! } }));
  return records.length;
};

test('a create retried after its idempotency record was lost (a crash before completion) answers the first image: one image, quota charged once', async () => {
  const headers = { 'idempotency-key': 'crash-between-commit-and-record' };
  const first = await call(7407, 'POST', '/storage-images', disk('once'), headers);
  expect(first.status).toBe(201);
  expect(await forgetIdempotencyRecords()).toBeGreaterThan(0);
  const retry = await call(7407, 'POST', '/storage-images', disk('once'), headers);
  expect({ status: retry.status, id: retry.json.id }).toEqual({ status: 201, id: first.json.id });
  expect((await mine(7407)).map((i) => i.id)).toEqual([first.json.id]);
  expect((await call(7407, 'GET', '/quota')).json.usedMb).toBe(1);
  // The CC1 API's create binds its key the same way.
  const cc1Body = { caller_id: 7407, name: 'cc1 once', size: 1, disk_controller: 1, filesystem: 0 };
  const cc1First = await call(7407, 'POST', '/user/storage_image/create/', cc1Body, { 'idempotency-key': 'cc1-crash' });
  await forgetIdempotencyRecords();
  const cc1Retry = await call(7407, 'POST', '/user/storage_image/create/', cc1Body, { 'idempotency-key': 'cc1-crash' });
  expect(cc1Retry.json.data.storage_image_id).toBe(cc1First.json.data.storage_image_id);
  expect((await mine(7407)).length).toBe(2);
});

test('with the database killed, REST answers 503 service_unavailable with Retry-After, the CC1 API cm_error; never 500', async () => {
  const created = await call(7406, 'POST', '/storage-images', disk('before the outage'));
  expect(created.status).toBe(201);
  process.kill(stack.dynamo.pid!, 'SIGKILL');
  const replies = [
    await call(7406, 'GET', '/storage-images'),
    await call(7406, 'GET', `/storage-images/${created.json.id}`),
    await call(7406, 'POST', '/storage-images', disk('during'), { 'idempotency-key': 'during-outage' }),
    await call(7406, 'PATCH', `/storage-images/${created.json.id}`, { name: 'renamed' }, { 'idempotency-key': 'during-outage-2' }),
  ];
  for (const reply of replies) {
    expect({ status: reply.status, code: reply.json.error.code, retryAfter: Number(reply.retryAfter) > 0 }).toEqual({ status: 503, code: 'service_unavailable', retryAfter: true });
  }
  const cc1 = await call(7406, 'POST', '/user/storage_image/get_list/', { caller_id: 7406 });
  expect({ status: cc1.status, cc1: cc1.json.status, data: cc1.json.data }).toEqual({ status: 200, cc1: 'cm_error', data: expect.stringMatching(/^service_unavailable: /) });
});
