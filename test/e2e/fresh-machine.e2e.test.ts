/**
 * The service as on a fresh Debian machine (SPEC 4.5): `tsx local/main.ts` in a child
 * process whose PATH hides parted, fdisk, dosfstools, xfsprogs, reiserfsprogs, ntfs-3g,
 * libvirt and QEMU (test/support/freshPath.ts, the hide list of fresh-path.sh). The
 * README walkthrough's 64 MB ext4 disk and a raw disk end `ok`; both APIs say that
 * only raw and ext4 can be made here.
 */
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';
import { freshPath, onPath, type FreshPath } from '../support/freshPath';

jest.setTimeout(90_000);

let fresh: FreshPath;
let stack: E2eStack;
let user: string;
const USER = 4242;

beforeAll(async () => {
  fresh = freshPath();
  stack = await startE2eStack({ env: { PATH: fresh.path } });
  user = await stack.token(USER);
});
afterAll(async () => {
  await stack?.stop();
  fresh?.cleanup();
});

const createReady = async (body: Record<string, unknown>) => {
  const created = await stack.rest('POST', '/storage-images', { token: user, body: { name: 'data', diskController: 'virtio', ...body } });
  expect(created.status).toBe(201);
  const done = await waitFor(
    () => stack.rest('GET', `/storage-images/${created.body.id}`, { token: user }),
    (r) => r.body.state !== 'adding',
  );
  return done.body;
};

test('the child really runs without parted and mkfs.vfat, with mkfs.ext4', () => {
  expect(['parted', 'sfdisk', 'mkfs.vfat', 'mkfs.xfs', 'mkfs.ntfs', 'mkfs.reiserfs', 'virsh'].filter((t) => onPath(t, fresh.path))).toEqual([]);
  expect(onPath('mkfs.ext4', fresh.path)).toBe(true);
});

test("the README walkthrough's 64 MB ext4 disk ends ok", async () => {
  expect(await createReady({ filesystem: 'ext4', sizeMb: 64 })).toMatchObject({ filesystem: 'ext4', sizeMb: 64, state: 'ok' });
});

test('a raw disk ends ok', async () => {
  expect(await createReady({ filesystem: 'raw', sizeMb: 16 })).toMatchObject({ filesystem: 'raw', state: 'ok' });
});

test('GET /filesystems: raw and ext4 available, the others not', async () => {
  const reply = await stack.rest('GET', '/filesystems', { token: user });
  expect(reply.status).toBe(200);
  expect(reply.body.items).toEqual([
    { id: 0, name: 'raw', available: true },
    { id: 2, name: 'fat32', available: false },
    { id: 5, name: 'ext4', available: true },
    { id: 6, name: 'reiserfs', available: false },
    { id: 7, name: 'xfs', available: false },
    { id: 8, name: 'ntfs', available: false },
  ]);
});

test("CC1 get_filesystems: CC1's name -> id dict of what can be made", async () => {
  const reply = await stack.cc1('user', 'get_filesystems', user, { caller_id: USER });
  expect(reply.body).toEqual({ status: 'ok', data: { raw: 0, ext4: 5 } });
});

test('a fat32 disk is refused at once, naming the missing tool and its Debian package; nothing is created', async () => {
  const before = await stack.rest('GET', '/storage-images', { token: user });
  const reply = await stack.rest('POST', '/storage-images', { token: user, body: { name: 'dos', diskController: 'virtio', filesystem: 'fat32', sizeMb: 64 } });
  expect(reply.status).toBe(409);
  expect(reply.body.error.code).toBe('filesystem_unavailable');
  expect(reply.body.error.message).toMatch(/mkfs\.vfat/);
  expect(reply.body.error.message).toMatch(/dosfstools/);
  const after = await stack.rest('GET', '/storage-images', { token: user });
  expect(after.body.items).toHaveLength(before.body.items.length);
});
