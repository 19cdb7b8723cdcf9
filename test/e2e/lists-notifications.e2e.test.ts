/**
 * SPEC 4.7 over HTTP against `npm start` (tsx local/main.ts in a child process): the
 * admin history route, list filters (`?state=`, `?vmId=`) across pages, and change
 * notifications (`GET /_local/published-events`). Every REST reply is checked against
 * docs/openapi.yaml by `stack.rest`.
 */
import { checkComponentSchema } from '../support/e2eOpenapi';
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

jest.setTimeout(90_000);

let stack: E2eStack;
const OWNER = 1301;
const OTHER = 1302;
let owner: string;
let other: string;
let admin: string;

beforeAll(async () => {
  stack = await startE2eStack();
  [owner, other, admin] = await Promise.all([stack.token(OWNER), stack.token(OTHER), stack.token(1, { admin: true })]);
});
afterAll(() => stack?.stop());

const create = async (token: string, name: string, body: Record<string, unknown> = {}) => {
  const reply = await stack.rest('POST', '/storage-images', { token, body: { name, diskController: 'virtio', sizeMb: 1, ...body } });
  expect(reply.status).toBe(201);
  return reply.body as { id: number; state: string };
};
const ready = (token: string, id: number) =>
  waitFor(
    () => stack.rest('GET', `/storage-images/${id}`, { token }),
    (r) => r.body.state !== 'adding',
  ).then((r) => r.body);

/** Every page of a listing, `limit` at a time; each reply checked against the OpenAPI document. */
const allPages = async (token: string, path: string, limit: number): Promise<{ items: any[]; pages: number }> => {
  const items: any[] = [];
  let pages = 0;
  let nextToken: string | undefined;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const reply = await stack.rest('GET', `${path}${sep}limit=${limit}${nextToken ? `&nextToken=${nextToken}` : ''}`, { token });
    expect({ path, status: reply.status }).toEqual({ path, status: 200 });
    items.push(...reply.body.items);
    nextToken = reply.body.nextToken;
    pages++;
  } while (nextToken);
  return { items, pages };
};

describe('GET /admin/storage-images/{id}/history', () => {
  test('an admin reads any image\'s trail, a revoked one\'s too, paged like the owner\'s', async () => {
    const image = await create(owner, 'audited');
    await ready(owner, image.id);
    expect((await stack.rest('PATCH', `/storage-images/${image.id}`, { token: owner, body: { name: 'audited 2' } })).status).toBe(200);
    expect((await stack.rest('DELETE', `/storage-images/${image.id}`, { token: owner })).status).toBe(200);

    // Revoked: gone for its owner, history included.
    expect((await stack.rest('GET', `/storage-images/${image.id}/history`, { token: owner })).status).toBe(404);

    const { items, pages } = await allPages(admin, `/admin/storage-images/${image.id}/history`, 2);
    expect(pages).toBeGreaterThanOrEqual(2); // a full last page may carry a token to an empty one
    // The revoke's outcome (its file removed) may or may not have come yet: the trail up to the revoke is fixed.
    expect(items.slice(0, 4).map((e) => e.type)).toEqual(['StorageImageCreated', 'StorageImageDiskReady', 'StorageImageEdited', 'StorageImageRevoked']);
    expect(items.slice(4).map((e) => e.type)).toEqual(items.length > 4 ? ['StorageImageDiskFileRemoved'] : []);
    expect(items.map((e) => e.version)).toEqual(items.map((_, i) => i + 1));
    expect(items[3].cause).toEqual({ kind: 'user', userId: OWNER });
  });

  test('is for admins only; a bad page token or id is a 400, an unknown image a 404', async () => {
    const image = await create(owner, 'not yours to read');
    expect((await stack.rest('GET', `/admin/storage-images/${image.id}/history`, { token: owner })).body.error.code).toBe('admin_required');
    expect((await stack.rest('GET', `/admin/storage-images/${image.id}/history?nextToken=x`, { token: admin })).status).toBe(400);
    expect((await stack.rest('GET', '/admin/storage-images/abc/history', { token: admin })).status).toBe(400);
    expect((await stack.rest('GET', '/admin/storage-images/999999999/history', { token: admin })).status).toBe(404);
  });
});

describe('list filters: ?state= and ?vmId=', () => {
  const LISTER = 1303; // images of their own: the other tests' do not show up
  let lister: string;
  const VM = 13011;
  const OTHER_VM = 13021;
  let okIds: number[];
  let attachedIds: number[];
  let revokedIds: number[];
  let othersId: number;

  const ids = (items: any[]) => items.map((i) => i.id as number).sort((a, b) => a - b);
  const sorted = (list: number[]) => [...list].sort((a, b) => a - b);
  /** Filtered lists read an index (eventually consistent): read every page until it holds what is expected. */
  const eventually = (token: string, path: string, limit: number, expected: number[], only: (id: number) => boolean = () => true) =>
    waitFor(
      () => allPages(token, path, limit),
      (r) => JSON.stringify(ids(r.items).filter(only)) === JSON.stringify(sorted(expected)),
      10_000,
    );

  beforeAll(async () => {
    lister = await stack.token(LISTER);
    await stack.putVmEvent({ vmId: VM, userId: LISTER, state: 'running' });
    await stack.putVmEvent({ vmId: OTHER_VM, userId: OTHER, state: 'running' });
    const made = [];
    for (let i = 0; i < 8; i++) made.push(await create(lister, `filtered ${i}`));
    for (const m of made) await ready(lister, m.id);
    attachedIds = made.slice(0, 3).map((m) => m.id);
    for (const id of attachedIds) expect((await stack.rest('POST', `/storage-images/${id}/attach`, { token: lister, body: { vmId: VM } })).status).toBe(200);
    revokedIds = made.slice(3, 5).map((m) => m.id);
    for (const id of revokedIds) expect((await stack.rest('DELETE', `/storage-images/${id}`, { token: lister })).status).toBe(200);
    okIds = made.filter((m) => !revokedIds.includes(m.id)).map((m) => m.id);
    othersId = (await create(other, 'someone else')).id;
    await ready(other, othersId);
    expect((await stack.rest('POST', `/storage-images/${othersId}/attach`, { token: other, body: { vmId: OTHER_VM } })).status).toBe(200);
  });

  test('a user\'s ?state=ok lists exactly their ok images, across pages', async () => {
    const { items, pages } = await eventually(lister, '/storage-images?state=ok', 2, okIds);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(items.every((i) => i.state === 'ok' && i.userId === LISTER)).toBe(true);
  });

  test('a user\'s ?vmId= lists the images on that VM, across pages; another user\'s VM lists none of theirs', async () => {
    const { items, pages } = await eventually(lister, `/storage-images?vmId=${VM}`, 1, attachedIds);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(items.every((i) => i.vmId === VM && i.diskDev)).toBe(true);
    // The other user's VM holds their image: the lister sees nothing of it.
    await eventually(other, `/storage-images?vmId=${OTHER_VM}`, 10, [othersId]);
    expect((await allPages(lister, `/storage-images?vmId=${OTHER_VM}`, 10)).items).toEqual([]);
    // Both filters at once.
    await eventually(lister, `/storage-images?vmId=${VM}&state=ok`, 2, attachedIds);
    expect((await allPages(lister, `/storage-images?vmId=${VM}&state=adding`, 2)).items).toEqual([]);
  });

  test('revoked images stay out of a user\'s lists, even asked by state; an admin finds them by state', async () => {
    expect((await allPages(lister, '/storage-images?state=locked', 5)).items).toEqual([]);
    await eventually(admin, `/admin/storage-images?userId=${LISTER}&state=locked`, 1, revokedIds);
    const mine = (id: number) => id >= Math.min(...okIds, ...revokedIds, othersId);
    // Everyone's ok images (other tests' too): ours and the other user's are there, across pages.
    await eventually(admin, '/admin/storage-images?state=ok', 3, [...okIds, othersId], mine);
    await eventually(admin, `/admin/storage-images?vmId=${VM}`, 2, attachedIds);
    await eventually(admin, `/admin/storage-images?vmId=${OTHER_VM}&userId=${OTHER}`, 2, [othersId]);
  });

  test('a bad filter or a token of another list is a 400 validation', async () => {
    for (const path of ['/storage-images?state=gone', '/storage-images?vmId=x', '/storage-images?vmId=0', '/admin/storage-images?state=OK']) {
      const reply = await stack.rest('GET', path, { token: path.startsWith('/admin') ? admin : lister });
      expect({ path, status: reply.status, code: reply.body.error?.code }).toEqual({ path, status: 400, code: 'validation' });
    }
    const first = await stack.rest('GET', '/storage-images?state=ok&limit=1', { token: lister });
    expect(first.body.nextToken).toBeDefined();
    for (const path of [`/storage-images?state=failed&nextToken=${first.body.nextToken}`, `/storage-images?nextToken=${first.body.nextToken}`, `/storage-images?vmId=${VM}&nextToken=${first.body.nextToken}`]) {
      const reply = await stack.rest('GET', path, { token: lister });
      expect({ path, status: reply.status, code: reply.body.error?.code }).toEqual({ path, status: 400, code: 'validation' });
    }
    // Another user cannot page on with it either.
    expect((await stack.rest('GET', `/storage-images?state=ok&nextToken=${first.body.nextToken}`, { token: other })).status).toBe(400);
  });
});

describe('change notifications (GET /_local/published-events)', () => {
  const WATCHER = 1304;
  const VM = 13041;
  const published = async () => (await stack.call('GET', '/_local/published-events')).body.items as any[];
  const changesOf = (items: any[], imageId: number) => items.filter((e) => e.detail.imageId === imageId);

  test('a portal that subscribes sees adding -> ok without polling the image, with the right detail', async () => {
    const token = await stack.token(WATCHER);
    const image = await create(token, 'watched');
    // Only the notifications are read from here on: never the image.
    const items = await waitFor(published, (all) => changesOf(all, image.id).some((e) => e.detail.state === 'ok'), 15_000);
    const changes = changesOf(items, image.id);
    for (const e of changes) {
      expect({ source: e.source, detailType: e.detailType }).toEqual({ source: 'cc1.storage', detailType: 'Storage Image Change' });
      // As documented: the event a subscriber's target receives.
      checkComponentSchema('StorageImageChangeEvent', { source: e.source, 'detail-type': e.detailType, time: e.time, detail: e.detail });
    }
    expect(changes.map((e) => e.detail)).toEqual([
      { imageId: image.id, userId: WATCHER, state: 'adding', vmId: null, diskDev: null, version: 1, cause: { kind: 'user', userId: WATCHER } },
      { imageId: image.id, userId: WATCHER, state: 'ok', vmId: null, diskDev: null, version: 2, cause: { kind: 'system', reason: expect.any(String) } },
    ]);
  });

  test('attach and detach are published; an edit (no change of state or attachment) is not', async () => {
    const token = await stack.token(WATCHER);
    await stack.putVmEvent({ vmId: VM, userId: WATCHER, state: 'running' });
    const image = await create(token, 'plugged');
    await ready(token, image.id);
    expect((await stack.rest('PATCH', `/storage-images/${image.id}`, { token, body: { name: 'renamed' } })).status).toBe(200);
    expect((await stack.rest('POST', `/storage-images/${image.id}/attach`, { token, body: { vmId: VM } })).status).toBe(200);
    expect((await stack.rest('POST', `/storage-images/${image.id}/detach`, { token, body: {} })).status).toBe(200);
    expect((await stack.rest('DELETE', `/storage-images/${image.id}`, { token })).status).toBe(200);
    const items = await waitFor(published, (all) => changesOf(all, image.id).some((e) => e.detail.state === 'locked'), 15_000);
    const details = changesOf(items, image.id).map((e) => e.detail);
    expect(details.map(({ state, vmId, diskDev }) => ({ state, vmId, diskDev }))).toEqual([
      { state: 'adding', vmId: null, diskDev: null },
      { state: 'ok', vmId: null, diskDev: null },
      { state: 'ok', vmId: VM, diskDev: 'vdb' },
      { state: 'ok', vmId: null, diskDev: null },
      { state: 'locked', vmId: null, diskDev: null },
    ]);
    // Versions 3 (Edited) and 4 (AttachRequested) changed nothing a portal sees: not published.
    expect(details.map((d) => d.version)).toEqual([1, 2, 5, 6, 7]);
  });
});
