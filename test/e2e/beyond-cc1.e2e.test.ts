/**
 * SPEC 4.7 over HTTP against `npm start` (tsx local/main.ts in a child process): the
 * admin history route, list filters (`?state=`, `?vmId=`) across pages, and change
 * notifications (`GET /_local/published-events`). Every REST reply is checked against
 * docs/openapi.yaml by `stack.rest`.
 */
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
    expect(items.map((e) => e.type)).toEqual(['StorageImageCreated', 'StorageImageDiskReady', 'StorageImageEdited', 'StorageImageRevoked']);
    expect(items.map((e) => e.version)).toEqual([1, 2, 3, 4]);
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
