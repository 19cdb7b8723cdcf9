/**
 * The REST API over HTTP, against `tsx local/main.ts` in a child process: auth,
 * ownership, admin routes, validation, read-your-writes, disk-file readiness,
 * Idempotency-Key, revoke, quota, paging. Every reply is checked against
 * docs/openapi.yaml by `stack.rest`.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_STORAGE_HOST_ID } from '../../local/stack';
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';
import { onPath } from '../support/freshPath';

jest.setTimeout(60_000);

let stack: E2eStack;
let alice: string; // user 101
let bob: string; // user 102
let admin: string; // user 1, group admin
const ALICE = 101;
const BOB = 102;

beforeAll(async () => {
  stack = await startE2eStack({ env: { DEFAULT_QUOTA_MB: '1000' } });
  [alice, bob, admin] = await Promise.all([stack.token(ALICE), stack.token(BOB), stack.token(1, { admin: true })]);
});
afterAll(() => stack?.stop());

const create = async (token: string, body: Record<string, unknown> = {}) => {
  const reply = await stack.rest('POST', '/storage-images', { token, body: { name: 'data', diskController: 'virtio', sizeMb: 10, ...body } });
  expect(reply.status).toBe(201);
  return reply.body;
};
const waitReady = (token: string, id: number) =>
  waitFor(
    () => stack.rest('GET', `/storage-images/${id}`, { token }),
    (r) => r.body.state !== 'adding',
  ).then((r) => r.body);

describe('catalogues', () => {
  test('GET /disk-controllers and GET /filesystems carry CC1 ids', async () => {
    const dc = await stack.rest('GET', '/disk-controllers', { token: alice });
    expect(dc.status).toBe(200);
    expect(dc.body.items).toEqual([
      { id: 0, name: 'scsi', liveAttach: false },
      { id: 1, name: 'virtio', liveAttach: true },
      { id: 2, name: 'ide', liveAttach: false },
      { id: 3, name: 'sata', liveAttach: false },
      { id: 4, name: 'usb', liveAttach: true },
    ]);
    const fs = await stack.rest('GET', '/filesystems', { token: alice });
    expect(fs.status).toBe(200);
    // `available`: whether the stack (this PATH) has the mkfs tool; fresh-machine.e2e hides some.
    expect(fs.body.items).toEqual([
      { id: 0, name: 'raw', available: true },
      { id: 2, name: 'fat32', available: onPath('mkfs.vfat') },
      { id: 5, name: 'ext4', available: onPath('mkfs.ext4') },
      { id: 6, name: 'reiserfs', available: onPath('mkfs.reiserfs') },
      { id: 7, name: 'xfs', available: onPath('mkfs.xfs') },
      { id: 8, name: 'ntfs', available: onPath('mkfs.ntfs') },
    ]);
  });
});

describe('authentication', () => {
  test('no token, an expired token, a forged signature, a non-bearer header: 401 on every kind of route', async () => {
    const expired = await stack.token(ALICE, { expiresInSeconds: -60 });
    const forged = await stack.token(ALICE, { secret: 'not-the-local-secret' });
    const routes: Array<[string, string]> = [
      ['GET', '/storage-images'],
      ['POST', '/storage-images'],
      ['GET', '/storage-images/1'],
      ['GET', '/admin/storage-images'],
      ['POST', '/vms/5/disks'],
      ['GET', '/disk-controllers'],
    ];
    for (const [method, path] of routes) {
      for (const headers of [{} as Record<string, string>, { authorization: `Bearer ${expired}` }, { authorization: `Bearer ${forged}` }, { authorization: `Basic ${alice}` }]) {
        const reply = await stack.rest(method, path, { headers, ...(method === 'POST' ? { body: { name: 'x', diskController: 'virtio', sizeMb: 1 } } : {}) });
        expect({ method, path, status: reply.status }).toEqual({ method, path, status: 401 });
      }
    }
    // Nothing was created by the refused POSTs.
    expect((await stack.rest('GET', '/storage-images', { token: alice })).body.items).toEqual([]);
  });

  test('groups may come in the `groups` claim too (admin)', async () => {
    const viaGroups = await stack.token(3, { extraClaims: { 'cognito:groups': [], groups: ['admin'] } });
    expect((await stack.rest('GET', '/admin/storage-images', { token: viaGroups })).status).toBe(200);
  });

  test('a token whose sub is not a CC1 user id is refused (403), not a 500', async () => {
    const odd = await stack.token('alice' as unknown as number);
    const reply = await stack.rest('GET', '/storage-images', { token: odd });
    expect(reply.status).toBe(403);
    expect(reply.body.error.code).toBe('user_permission');
  });
});

describe('validation: 400 with a code, never 500', () => {
  const cases: Array<[string, string, string, { body?: unknown; rawBody?: string }, string]> = [
    ['malformed JSON', 'POST', '/storage-images', { rawBody: '{"name": "x",' }, 'validation'],
    ['a JSON array body', 'POST', '/storage-images', { body: [] }, 'validation'],
    ['sizeMb 0', 'POST', '/storage-images', { body: { name: 'x', diskController: 'virtio', sizeMb: 0 } }, 'image_invalid_size'],
    ['sizeMb negative', 'POST', '/storage-images', { body: { name: 'x', diskController: 'virtio', sizeMb: -5 } }, 'image_invalid_size'],
    ['sizeMb fractional', 'POST', '/storage-images', { body: { name: 'x', diskController: 'virtio', sizeMb: 1.5 } }, 'image_invalid_size'],
    ['sizeMb as text', 'POST', '/storage-images', { body: { name: 'x', diskController: 'virtio', sizeMb: '10' } }, 'image_invalid_size'],
    ['xfs below 300 MB', 'POST', '/storage-images', { body: { name: 'x', diskController: 'virtio', filesystem: 'xfs', sizeMb: 10 } }, 'image_invalid_size'],
    ['unknown controller', 'POST', '/storage-images', { body: { name: 'x', diskController: 'floppy', sizeMb: 1 } }, 'validation'],
    ['unknown filesystem', 'POST', '/storage-images', { body: { name: 'x', diskController: 'virtio', filesystem: 'zfs', sizeMb: 1 } }, 'validation'],
    ['missing name', 'POST', '/storage-images', { body: { diskController: 'virtio', sizeMb: 1 } }, 'validation'],
    ['empty name', 'POST', '/storage-images', { body: { name: '', diskController: 'virtio', sizeMb: 1 } }, 'validation'],
    ['blank name', 'POST', '/storage-images', { body: { name: '   ', diskController: 'virtio', sizeMb: 1 } }, 'validation'],
    ['46-character name', 'POST', '/storage-images', { body: { name: 'n'.repeat(46), diskController: 'virtio', sizeMb: 1 } }, 'validation'],
    ['513-character description', 'POST', '/storage-images', { body: { name: 'x', description: 'd'.repeat(513), diskController: 'virtio', sizeMb: 1 } }, 'validation'],
    ['unknown field', 'POST', '/storage-images', { body: { name: 'x', diskController: 'virtio', sizeMb: 1, owner: 5 } }, 'validation'],
    ['a non-integer image id', 'GET', '/storage-images/abc', {}, 'validation'],
    ['image id 0', 'GET', '/storage-images/0', {}, 'validation'],
    ['a 20-digit image id', 'GET', '/storage-images/99999999999999999999', {}, 'validation'],
    ['limit 0', 'GET', '/storage-images?limit=0', {}, 'validation'],
    ['limit text', 'GET', '/storage-images?limit=ten', {}, 'validation'],
    ['a nextToken the API never gave', 'GET', '/storage-images?nextToken=%24%24%24', {}, 'validation'],
    ['attach without vmId', 'POST', '/storage-images/1/attach', { body: {} }, 'validation'],
    ['attach with vmId text', 'POST', '/storage-images/1/attach', { body: { vmId: 'five' } }, 'validation'],
    ['detach with malformed JSON', 'POST', '/storage-images/1/detach', { rawBody: 'vmId=5' }, 'validation'],
    ['edit with a numeric name', 'PATCH', '/storage-images/1', { body: { name: 5 } }, 'validation'],
  ];
  test.each(cases)('%s', async (_what, method, path, options, code) => {
    const reply = await stack.rest(method, path, { token: alice, ...options });
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe(code);
    expect(reply.body.error.message).toEqual(expect.any(String));
  });

  test('admin query parameters: includeRevoked must be true/false, userId an id', async () => {
    for (const q of ['includeRevoked=maybe', 'userId=bob', 'userId=0']) {
      const reply = await stack.rest('GET', `/admin/storage-images?${q}`, { token: admin });
      expect(reply.status).toBe(400);
      expect(reply.body.error.code).toBe('validation');
    }
  });

  test('names are counted in code points: 45 emoji are a valid name', async () => {
    const name = '😀'.repeat(45);
    const image = await create(alice, { name, sizeMb: 1 });
    expect(image.name).toBe(name);
    const bad = await stack.rest('POST', '/storage-images', { token: alice, body: { name: '😀'.repeat(46), diskController: 'virtio', sizeMb: 1 } });
    expect(bad.status).toBe(400);
  });

  test('unknown routes are 404 and wrong methods 405 (no handler reached)', async () => {
    expect((await stack.call('GET', '/storage-imagez', { token: alice })).status).toBe(404);
    expect((await stack.call('PUT', '/storage-images/1', { token: alice })).status).toBe(405);
  });
});

describe('create, read-your-writes, readiness, edit', () => {
  test('a new image is adding, seen at once by GET and the list, then ok', async () => {
    const created = await create(alice, { name: 'alpha', description: 'first disk', filesystem: 'ext4', sizeMb: 20 });
    expect(created).toMatchObject({
      userId: ALICE,
      name: 'alpha',
      description: 'first disk',
      diskController: 'virtio',
      filesystem: 'ext4',
      sizeMb: 20,
      state: 'adding',
      progress: 0,
      vmId: null,
      diskDev: null,
      version: 1,
    });
    expect(Number.isInteger(created.id)).toBe(true);
    expect(Date.parse(created.creationDate)).not.toBeNaN();
    // No polling: the very next reads show it.
    const got = await stack.rest('GET', `/storage-images/${created.id}`, { token: alice });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: created.id, name: 'alpha' });
    const list = await stack.rest('GET', '/storage-images', { token: alice });
    expect(list.body.items.map((i: { id: number }) => i.id)).toContain(created.id);
    // The disk file is made asynchronously (by design): ok within a short bounded wait.
    const ready = await waitReady(alice, created.id);
    expect(ready).toMatchObject({ state: 'ok', progress: 100 });
    // The raw disk file is at <storage>/<user id>/<image id>, of the size asked.
    expect(statSync(join(stack.dataDir, 'storage', String(ALICE), String(created.id))).size).toBe(20 * 1024 * 1024);
    const history = await stack.rest('GET', `/storage-images/${created.id}/history`, { token: alice });
    expect(history.body.items.map((e: { type: string }) => e.type)).toEqual(['StorageImageCreated', 'StorageImageDiskReady']);
    expect(history.body.items[0]).toMatchObject({ version: 1, cause: { kind: 'user', userId: ALICE }, data: { name: 'alpha', sizeMb: 20 } });
    expect(history.body.items[1].cause).toEqual({ kind: 'system', reason: 'disk-file' });
  });

  test('an edit is seen by the next GET and list', async () => {
    const image = await create(alice, { name: 'before' });
    const edited = await stack.rest('PATCH', `/storage-images/${image.id}`, {
      token: alice,
      body: { name: 'after', description: 'new words', diskController: 'scsi' },
    });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ id: image.id, name: 'after', description: 'new words', diskController: 'scsi' });
    const got = await stack.rest('GET', `/storage-images/${image.id}`, { token: alice });
    expect(got.body).toMatchObject({ name: 'after', description: 'new words', diskController: 'scsi' });
    const listed = (await stack.rest('GET', '/storage-images', { token: alice })).body.items.find((i: { id: number }) => i.id === image.id);
    expect(listed).toMatchObject({ name: 'after', description: 'new words', diskController: 'scsi' });
    // The disk file may have become ready since: the list is never older than the edit.
    expect(listed.version).toBeGreaterThanOrEqual(edited.body.version);
    const types = (await stack.rest('GET', `/storage-images/${image.id}/history`, { token: alice })).body.items.map((e: { type: string }) => e.type);
    expect(types).toContain('StorageImageEdited');
  });

  test('paging: limit and nextToken walk the list without gaps or repeats', async () => {
    const carol = await stack.token(103);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await create(carol, { name: `page-${i}`, sizeMb: 1 })).id);
    const seen: number[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const reply = await stack.rest('GET', `/storage-images?limit=2${nextToken ? `&nextToken=${encodeURIComponent(nextToken)}` : ''}`, { token: carol });
      expect(reply.status).toBe(200);
      expect(reply.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...reply.body.items.map((i: { id: number }) => i.id));
      nextToken = reply.body.nextToken;
      pages++;
    } while (nextToken && pages < 10);
    expect(seen.sort((a, b) => a - b)).toEqual(ids.sort((a, b) => a - b));
    expect(pages).toBeGreaterThanOrEqual(3);
  });
});

describe('ownership', () => {
  test("another user never sees or changes an image: 403 image_permission or 404 image_get, no data", async () => {
    const secret = await create(alice, { name: 'alice-secret-name', description: 'alice-secret-description' });
    await waitReady(alice, secret.id);
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', `/storage-images/${secret.id}`],
      ['GET', `/storage-images/${secret.id}/history`],
      ['PATCH', `/storage-images/${secret.id}`, { name: 'stolen' }],
      ['DELETE', `/storage-images/${secret.id}`],
      ['POST', `/storage-images/${secret.id}/attach`, { vmId: 77 }],
      ['POST', `/storage-images/${secret.id}/detach`, {}],
    ];
    for (const [method, path, body] of attempts) {
      const reply = await stack.rest(method, path, { token: bob, ...(body !== undefined ? { body } : {}) });
      expect({ method, path, status: reply.status }).toEqual({ method, path, status: expect.any(Number) });
      expect([403, 404]).toContain(reply.status);
      expect(['image_permission', 'image_get']).toContain(reply.body.error.code);
      expect(reply.text).not.toContain('alice-secret');
    }
    expect((await stack.rest('GET', '/storage-images', { token: bob })).text).not.toContain('alice-secret');
    // Unchanged for its owner.
    const mine = await stack.rest('GET', `/storage-images/${secret.id}`, { token: alice });
    expect(mine.body).toMatchObject({ name: 'alice-secret-name', state: 'ok' });
  });

  test('an unknown id is 404 image_get', async () => {
    const reply = await stack.rest('GET', '/storage-images/999999', { token: alice });
    expect(reply.status).toBe(404);
    expect(reply.body.error.code).toBe('image_get');
  });

  test('an admin on the user routes acts as a user: another user\'s image is refused there', async () => {
    const image = await create(alice, { name: 'alice-only' });
    const reply = await stack.rest('GET', `/storage-images/${image.id}`, { token: admin });
    expect([403, 404]).toContain(reply.status);
    expect(reply.text).not.toContain('alice-only');
  });
});

describe('admin routes', () => {
  test('are refused to users (403) and do nothing', async () => {
    const image = await create(alice, { name: 'guarded' });
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', '/admin/storage-images'],
      ['GET', `/admin/storage-images?userId=${ALICE}`],
      ['GET', `/admin/storage-images/${image.id}`],
      ['DELETE', `/admin/storage-images/${image.id}`],
      ['POST', `/admin/storage-images/${image.id}/detach`, {}],
    ];
    for (const token of [alice, bob, await stack.token(104, { portal: true })]) {
      for (const [method, path, body] of attempts) {
        const reply = await stack.rest(method, path, { token, ...(body !== undefined ? { body } : {}) });
        expect({ method, path, status: reply.status, code: reply.body.error.code }).toEqual({ method, path, status: 403, code: 'admin_required' });
        expect(reply.text).not.toContain('guarded');
      }
    }
    expect((await stack.rest('GET', `/storage-images/${image.id}`, { token: alice })).body.state).not.toBe('locked');
  });

  test('an admin lists all images or one user\'s, and reads any image', async () => {
    const a = await create(alice, { name: 'for-admin-a' });
    const b = await create(bob, { name: 'for-admin-b' });
    const all = await stack.rest('GET', '/admin/storage-images?limit=1000', { token: admin });
    expect(all.status).toBe(200);
    const allIds = all.body.items.map((i: { id: number }) => i.id);
    expect(allIds).toEqual(expect.arrayContaining([a.id, b.id]));
    const bobs = await stack.rest('GET', `/admin/storage-images?userId=${BOB}`, { token: admin });
    expect(bobs.body.items.every((i: { userId: number }) => i.userId === BOB)).toBe(true);
    expect(bobs.body.items.map((i: { id: number }) => i.id)).toContain(b.id);
    const one = await stack.rest('GET', `/admin/storage-images/${a.id}`, { token: admin });
    expect(one.body).toMatchObject({ id: a.id, userId: ALICE, name: 'for-admin-a' });
    expect((await stack.rest('GET', '/admin/storage-images/999999', { token: admin })).body.error.code).toBe('image_get');
  });

  test('an admin revokes any user\'s image; the owner no longer sees it; cause admin', async () => {
    const image = await create(bob, { name: 'admin-revokes-me' });
    await waitReady(bob, image.id);
    const revoked = await stack.rest('DELETE', `/admin/storage-images/${image.id}`, { token: admin });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: image.id, state: 'locked' });
    expect((await stack.rest('GET', `/storage-images/${image.id}`, { token: bob })).status).toBe(404);
    const adminView = await stack.rest('GET', `/admin/storage-images/${image.id}`, { token: admin });
    expect(adminView.body.state).toBe('locked');
    const bobsList = await stack.rest('GET', '/storage-images', { token: bob });
    expect(bobsList.body.items.map((i: { id: number }) => i.id)).not.toContain(image.id);
  });
});

describe('Idempotency-Key', () => {
  test('the same POST twice with the same key: the same image, one Created event, one list entry', async () => {
    const dave = await stack.token(105);
    const body = { name: 'once', diskController: 'virtio', sizeMb: 5 };
    const headers = { 'Idempotency-Key': 'create-once-1' };
    const first = await stack.rest('POST', '/storage-images', { token: dave, body, headers });
    const second = await stack.rest('POST', '/storage-images', { token: dave, body, headers });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body.id).toBe(first.body.id);
    const list = await stack.rest('GET', '/storage-images', { token: dave });
    expect(list.body.items).toHaveLength(1);
    const history = await stack.rest('GET', `/storage-images/${first.body.id}/history`, { token: dave });
    expect(history.body.items.filter((e: { type: string }) => e.type === 'StorageImageCreated')).toHaveLength(1);
    // Another body under the same key is refused, and creates nothing.
    const other = await stack.rest('POST', '/storage-images', { token: dave, body: { ...body, name: 'twice' }, headers });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
    expect((await stack.rest('GET', '/storage-images', { token: dave })).body.items).toHaveLength(1);
    // Without the key (or with another), a second POST is a second image.
    const fresh = await stack.rest('POST', '/storage-images', { token: dave, body, headers: { 'Idempotency-Key': 'create-once-2' } });
    expect(fresh.body.id).not.toBe(first.body.id);
  });

  test('concurrent twins with one key create one image', async () => {
    const erin = await stack.token(106);
    const body = { name: 'twin', diskController: 'virtio', sizeMb: 5 };
    const replies = await Promise.all(
      [0, 1, 2, 3].map(() => stack.rest('POST', '/storage-images', { token: erin, body, headers: { 'Idempotency-Key': 'twins' } })),
    );
    for (const r of replies) expect([201, 409]).toContain(r.status);
    const ids = new Set(replies.filter((r) => r.status === 201).map((r) => r.body.id));
    expect(ids.size).toBe(1);
    expect((await stack.rest('GET', '/storage-images', { token: erin })).body.items).toHaveLength(1);
  });

  test('a refused request is not remembered: the same key works once the cause is gone', async () => {
    const key = { 'Idempotency-Key': 'after-refusal' };
    const ivan = await stack.token(113);
    const big = await create(ivan, { name: 'fills', sizeMb: 1000 });
    const refused = await stack.rest('POST', '/storage-images', { token: ivan, body: { name: 'later', diskController: 'virtio', sizeMb: 10 }, headers: key });
    expect(refused.body.error.code).toBe('user_storage_limit');
    await waitReady(ivan, big.id);
    expect((await stack.rest('DELETE', `/storage-images/${big.id}`, { token: ivan })).status).toBe(200);
    const retried = await stack.rest('POST', '/storage-images', { token: ivan, body: { name: 'later', diskController: 'virtio', sizeMb: 10 }, headers: key });
    expect(retried.status).toBe(201);
  });

  test('a key is per caller: another user with the same key gets their own image', async () => {
    const body = { name: 'per-caller', diskController: 'virtio', sizeMb: 1 };
    const headers = { 'Idempotency-Key': 'shared-key' };
    const a = await stack.rest('POST', '/storage-images', { token: await stack.token(107), body, headers });
    const b = await stack.rest('POST', '/storage-images', { token: await stack.token(108), body, headers });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.userId).toBe(108);
    expect(b.body.id).not.toBe(a.body.id);
  });
});

describe('revoke', () => {
  test('ok and detached: 200 locked; then out of the list, 404 image_get, in the admin list only with includeRevoked', async () => {
    const image = await create(alice, { name: 'to-revoke' });
    await waitReady(alice, image.id);
    const revoked = await stack.rest('DELETE', `/storage-images/${image.id}`, { token: alice });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: image.id, state: 'locked' });
    // The disk file is removed (asynchronously, by the disk-file reaction).
    await waitFor(async () => existsSync(join(stack.dataDir, 'storage', String(ALICE), String(image.id))), (exists) => !exists);
    const got = await stack.rest('GET', `/storage-images/${image.id}`, { token: alice });
    expect(got.status).toBe(404);
    expect(got.body.error.code).toBe('image_get');
    expect((await stack.rest('GET', '/storage-images', { token: alice })).body.items.map((i: { id: number }) => i.id)).not.toContain(image.id);
    const ids = async (q: string) => (await stack.rest('GET', `/admin/storage-images?${q}`, { token: admin })).body.items.map((i: { id: number }) => i.id);
    expect(await ids(`userId=${ALICE}`)).not.toContain(image.id);
    expect(await ids(`userId=${ALICE}&includeRevoked=false`)).not.toContain(image.id);
    expect(await ids(`userId=${ALICE}&includeRevoked=true`)).toContain(image.id);
    expect(await ids('limit=1000')).not.toContain(image.id);
    expect(await ids('limit=1000&includeRevoked=true')).toContain(image.id);
    // Revoking again is a harmless retry (DELETE is idempotent): no second Revoked event.
    const again = await stack.rest('DELETE', `/storage-images/${image.id}`, { token: alice });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ state: 'locked' });
    const adminView = await stack.rest('GET', `/admin/storage-images/${image.id}`, { token: admin });
    expect(adminView.body).toMatchObject({ state: 'locked', version: again.body.version });
    // One Revoked; after it at most the revoke's outcome (the file removed by the storage host).
    const trail = (await stack.rest('GET', `/admin/storage-images/${image.id}/history`, { token: admin })).body.items.map((e: { type: string }) => e.type);
    expect(trail.filter((t: string) => t === 'StorageImageRevoked')).toHaveLength(1);
    expect(trail.slice(revoked.body.version)).toEqual(again.body.version > revoked.body.version ? ['StorageImageDiskFileRemoved'] : []);
  });

  test('an image still adding cannot be revoked (409 image_delete) and is left as it was', async () => {
    // The storage host's agent is away, so the disk file cannot be made and the image
    // stays `adding` for the whole test: the revoke meets that state, never a ready one.
    const young = await stack.token(114);
    expect((await stack.call('POST', `/_local/hosts-offline/${LOCAL_STORAGE_HOST_ID}`)).status).toBe(204);
    try {
      const image = await create(young, { name: 'young', sizeMb: 1 });
      const reply = await stack.rest('DELETE', `/storage-images/${image.id}`, { token: young });
      expect({ status: reply.status, code: reply.body.error?.code }).toEqual({ status: 409, code: 'image_delete' });
      const after = await stack.rest('GET', `/storage-images/${image.id}`, { token: young });
      expect(after.body).toMatchObject({ state: 'adding', version: image.version });
      expect((await stack.rest('GET', '/quota', { token: young })).body.usedMb).toBe(1);
    } finally {
      expect((await stack.call('DELETE', `/_local/hosts-offline/${LOCAL_STORAGE_HOST_ID}`)).status).toBe(204);
    }
  });
});

describe('quota (DEFAULT_QUOTA_MB=1000)', () => {
  test('beyond the quota: 409 user_storage_limit; revoking frees it', async () => {
    const frank = await stack.token(109);
    const big = await create(frank, { name: 'big', sizeMb: 600 });
    const over = await stack.rest('POST', '/storage-images', { token: frank, body: { name: 'over', diskController: 'virtio', sizeMb: 500 } });
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe('user_storage_limit');
    expect((await stack.rest('GET', '/storage-images', { token: frank })).body.items).toHaveLength(1);
    // Exactly up to the quota is fine.
    await create(frank, { name: 'fits', sizeMb: 400 });
    await waitReady(frank, big.id);
    expect((await stack.rest('DELETE', `/storage-images/${big.id}`, { token: frank })).status).toBe(200);
    const now = await stack.rest('POST', '/storage-images', { token: frank, body: { name: 'after-revoke', diskController: 'virtio', sizeMb: 500 } });
    expect(now.status).toBe(201);
  });

  test('concurrent creates never overrun the quota: 10 x 150 MB against 1000 MB -> exactly 6', async () => {
    const racer = await stack.token(112);
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => stack.rest('POST', '/storage-images', { token: racer, body: { name: `q${i}`, diskController: 'virtio', sizeMb: 150 } })),
    );
    expect(replies.filter((r) => r.status === 201)).toHaveLength(6);
    for (const r of replies.filter((r) => r.status !== 201)) expect([r.status, r.body.error.code]).toEqual([409, 'user_storage_limit']);
    const items = (await stack.rest('GET', '/storage-images', { token: racer })).body.items as Array<{ sizeMb: number }>;
    expect(items.reduce((sum, i) => sum + i.sizeMb, 0)).toBe(900);
  });

  test('quota is per user', async () => {
    const g = await stack.token(110);
    await create(g, { name: 'g', sizeMb: 1000 });
    const h = await stack.token(111);
    expect((await stack.rest('POST', '/storage-images', { token: h, body: { name: 'h', diskController: 'virtio', sizeMb: 1000 } })).status).toBe(201);
  });
});
