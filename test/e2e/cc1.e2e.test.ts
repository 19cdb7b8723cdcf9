/**
 * The CC1-compatible API over HTTP: every `user` and `admin_cm` function, CC1's
 * envelopes and dicts, `caller_id` checks, errors as HTTP 200 with the code in status.
 */
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';
import { onPath } from '../support/freshPath';

jest.setTimeout(60_000);

let stack: E2eStack;
const USER = 601;
const OTHER = 602;
let user: string;
let other: string;
let admin: string;
let portal: string;

beforeAll(async () => {
  stack = await startE2eStack();
  [user, other, admin, portal] = await Promise.all([
    stack.token(USER),
    stack.token(OTHER),
    stack.token(1, { admin: true }),
    stack.token(2, { portal: true }),
  ]);
});
afterAll(() => stack?.stop());

const CC1_DICT_KEYS = [
  'creation_date',
  'description',
  'disk_controller',
  'disk_dev',
  'image_id',
  'name',
  'progress',
  'size',
  'state',
  'storage_image_id',
  'user_id',
  'vm_id',
  'vm_name',
].sort();

const ok = (reply: { status: number; body: any }) => {
  expect(reply.status).toBe(200);
  expect(reply.body.status).toBe('ok');
  return reply.body.data;
};
const refused = (reply: { status: number; body: any }, code: string) => {
  expect(reply.status).toBe(200);
  expect(reply.body).toEqual({ status: code, data: expect.anything() });
};

const createReady = async (token: string, callerId: number, extra: Record<string, unknown> = {}) => {
  const data = ok(await stack.cc1('user', 'create', token, { caller_id: callerId, name: 'cc1 disk', description: 'via cc1', size: 8, disk_controller: 1, filesystem: 5, ...extra }));
  await waitFor(
    () => stack.cc1('user', 'get_by_id', token, { caller_id: callerId, storage_image_id: data.storage_image_id }),
    (r) => r.body.data.state !== 2,
  );
  return data;
};

describe('user functions', () => {
  test('create: CC1 dict with integer ids, state adding (2); get_by_id at once; then ok (0)', async () => {
    const data = ok(
      await stack.cc1('user', 'create', user, { caller_id: USER, name: 'legacy', description: 'from the old portal', size: 16, disk_controller: 1, filesystem: 5 }),
    );
    expect(Object.keys(data).sort()).toEqual(CC1_DICT_KEYS);
    expect(data).toMatchObject({
      image_id: data.storage_image_id,
      user_id: USER,
      name: 'legacy',
      description: 'from the old portal',
      disk_controller: 1,
      progress: 0,
      state: 2,
      size: 16,
      disk_dev: '',
      vm_name: '',
    });
    expect(Number.isInteger(data.storage_image_id)).toBe(true);
    // CC1's format (json_convert in CC1's src/cm/utils/decorators.py), not ISO.
    expect(data.creation_date).toMatch(/^[0-3][0-9]\.[01][0-9]\.[0-9]{4}, [0-2][0-9]:[0-5][0-9]:[0-5][0-9]$/);
    // Read-your-writes, then readiness.
    const got = ok(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: data.storage_image_id }));
    expect(got.name).toBe('legacy');
    const listedAtOnce = ok(await stack.cc1('user', 'get_list', user, { caller_id: USER }));
    expect(listedAtOnce.map((d: { storage_image_id: number }) => d.storage_image_id)).toContain(data.storage_image_id);
    const ready = await waitFor(
      () => stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: data.storage_image_id }),
      (r) => r.body.data.state !== 2,
    );
    expect(ready.body.data).toMatchObject({ state: 0, progress: 100 });
    // The REST view of the same image agrees.
    const rest = await stack.rest('GET', `/storage-images/${data.storage_image_id}`, { token: user });
    expect(rest.body).toMatchObject({ diskController: 'virtio', filesystem: 'ext4', sizeMb: 16, state: 'ok' });
  });

  test('get_list, edit (seen at once), get_disk_controllers, get_filesystems', async () => {
    const image = await createReady(user, USER);
    const list = ok(await stack.cc1('user', 'get_list', user, { caller_id: USER }));
    expect(Array.isArray(list)).toBe(true);
    expect(list.map((d: { storage_image_id: number }) => d.storage_image_id)).toContain(image.storage_image_id);
    for (const d of list) expect(Object.keys(d).sort()).toEqual(CC1_DICT_KEYS);

    ok(await stack.cc1('user', 'edit', user, { caller_id: USER, storage_image_id: image.storage_image_id, name: 'renamed', description: 'new', disk_controller: 0 }));
    expect(ok(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: image.storage_image_id }))).toMatchObject({
      name: 'renamed',
      description: 'new',
      disk_controller: 0,
    });
    const listed = ok(await stack.cc1('user', 'get_list', user, { caller_id: USER })).find(
      (d: { storage_image_id: number }) => d.storage_image_id === image.storage_image_id,
    );
    expect(listed).toMatchObject({ name: 'renamed', disk_controller: 0 });

    expect(ok(await stack.cc1('user', 'get_disk_controllers', user, { caller_id: USER }))).toEqual([
      { id: 0, name: 'scsi', live_attach: false },
      { id: 1, name: 'virtio', live_attach: true },
      { id: 2, name: 'ide', live_attach: false },
      { id: 3, name: 'sata', live_attach: false },
      { id: 4, name: 'usb', live_attach: true },
    ]);
    const filesystems = ok(await stack.cc1('user', 'get_filesystems', user, { caller_id: USER }));
    // CC1's name -> id dict, holding only what the stack (this PATH) has the mkfs tool for.
    const tools: Array<[string, number, string | undefined]> = [
      ['raw', 0, undefined],
      ['fat32', 2, 'mkfs.vfat'],
      ['ext4', 5, 'mkfs.ext4'],
      ['reiserfs', 6, 'mkfs.reiserfs'],
      ['xfs', 7, 'mkfs.xfs'],
      ['ntfs', 8, 'mkfs.ntfs'],
    ];
    expect(filesystems).toEqual(Object.fromEntries(tools.filter(([, , tool]) => !tool || onPath(tool)).map(([name, id]) => [name, id])));
  });

  test('attach and detach to a running VM: disk_dev, vm_id, vm_name', async () => {
    const VM = 6001;
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
    const image = await createReady(user, USER);
    ok(await stack.cc1('user', 'attach', user, { caller_id: USER, storage_image_id: image.storage_image_id, vm_id: VM }));
    const attached = ok(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: image.storage_image_id }));
    expect(attached).toMatchObject({ disk_dev: 'vdb', vm_id: VM, vm_name: expect.any(String) });
    expect(attached.vm_name).not.toBe('');
    // Attached: delete refused, a second attach refused.
    refused(await stack.cc1('user', 'delete', user, { caller_id: USER, storage_image_id: image.storage_image_id }), 'image_attached');
    refused(await stack.cc1('user', 'attach', user, { caller_id: USER, storage_image_id: image.storage_image_id, vm_id: VM }), 'image_attached');
    ok(await stack.cc1('user', 'detach', user, { caller_id: USER, storage_image_id: image.storage_image_id, vm_id: VM }));
    expect(ok(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: image.storage_image_id }))).toMatchObject({
      disk_dev: '',
      vm_name: '',
    });
    // An ide disk cannot be hot-plugged; a VM that is not running cannot take one.
    const ide = await createReady(user, USER, { disk_controller: 2 });
    refused(await stack.cc1('user', 'attach', user, { caller_id: USER, storage_image_id: ide.storage_image_id, vm_id: VM }), 'storage_image_attach');
    refused(await stack.cc1('user', 'attach', user, { caller_id: USER, storage_image_id: image.storage_image_id, vm_id: 6999 }), 'vm_get');
  });

  test('delete: ok, then get_by_id is image_get and get_list leaves it out', async () => {
    const image = await createReady(user, USER);
    expect(ok(await stack.cc1('user', 'delete', user, { caller_id: USER, storage_image_id: image.storage_image_id }))).toBeNull();
    refused(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: image.storage_image_id }), 'image_get');
    const list = ok(await stack.cc1('user', 'get_list', user, { caller_id: USER }));
    expect(list.map((d: { storage_image_id: number }) => d.storage_image_id)).not.toContain(image.storage_image_id);
  });
});

describe('permissions', () => {
  test("another user's image: image_permission (HTTP 200), never its data", async () => {
    const image = await createReady(user, USER, { name: 'victim-name-601', description: 'victim-description-601' });
    const id = image.storage_image_id;
    const calls: Array<[string, Record<string, unknown>]> = [
      ['get_by_id', {}],
      ['edit', { name: 'stolen' }],
      ['delete', {}],
      ['attach', { vm_id: 6002 }],
      ['detach', {}],
    ];
    await stack.putVmEvent({ vmId: 6002, userId: OTHER, state: 'running' });
    for (const [fn, extra] of calls) {
      const reply = await stack.cc1('user', fn, other, { caller_id: OTHER, storage_image_id: id, ...extra });
      expect(reply.status).toBe(200);
      expect({ fn, status: reply.body.status }).toEqual({ fn, status: expect.stringMatching(/^(image_permission|image_get)$/) });
      expect(reply.text).not.toContain('victim-');
    }
    const list = await stack.cc1('user', 'get_list', other, { caller_id: OTHER });
    expect(list.text).not.toContain('victim-');
    expect(ok(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: id }))).toMatchObject({ name: 'victim-name-601', state: 0 });
  });

  test('caller_id not the token subject: user_permission on every function', async () => {
    const image = await createReady(user, USER);
    const fns: Array<[string, Record<string, unknown>]> = [
      ['create', { name: 'x', size: 1, disk_controller: 1 }],
      ['get_list', {}],
      ['get_by_id', { storage_image_id: image.storage_image_id }],
      ['delete', { storage_image_id: image.storage_image_id }],
      ['edit', { storage_image_id: image.storage_image_id, name: 'y' }],
      ['attach', { storage_image_id: image.storage_image_id, vm_id: 1 }],
      ['detach', { storage_image_id: image.storage_image_id }],
      ['get_disk_controllers', {}],
      ['get_filesystems', {}],
    ];
    for (const [fn, extra] of fns) {
      const reply = await stack.cc1('user', fn, other, { caller_id: USER, ...extra });
      expect({ fn, http: reply.status, status: reply.body.status }).toEqual({ fn, http: 200, status: 'user_permission' });
      expect(reply.text).not.toContain('cc1 disk');
    }
    expect(ok(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: image.storage_image_id })).state).toBe(0);
  });

  test('a portal token acts for any caller_id', async () => {
    const image = await createReady(user, USER);
    const got = ok(await stack.cc1('user', 'get_by_id', portal, { caller_id: USER, storage_image_id: image.storage_image_id }));
    expect(got.user_id).toBe(USER);
    const created = ok(await stack.cc1('user', 'create', portal, { caller_id: OTHER, name: 'made by portal', size: 1, disk_controller: 1 }));
    expect(created.user_id).toBe(OTHER);
    // ...but acting for one user, it cannot reach another user's image.
    refused(await stack.cc1('user', 'get_by_id', portal, { caller_id: OTHER, storage_image_id: image.storage_image_id }), 'image_permission');
  });

  test('admin_cm functions are refused to non-admins (user_permission)', async () => {
    const image = await createReady(user, USER);
    for (const token of [user, portal]) {
      for (const [fn, extra] of [
        ['get_list', {}],
        ['get_by_id', { storage_image_id: image.storage_image_id }],
        ['delete', { storage_image_id: image.storage_image_id }],
        ['edit', { storage_image_id: image.storage_image_id, name: 'admin-only' }],
      ] as const) {
        const reply = await stack.cc1('admin_cm', fn, token, { caller_id: USER, ...extra });
        expect({ fn, http: reply.status, status: reply.body.status }).toEqual({ fn, http: 200, status: 'user_permission' });
        expect(reply.text).not.toContain('cc1 disk');
      }
    }
    expect(ok(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: image.storage_image_id }))).toMatchObject({ state: 0, name: 'cc1 disk' });
  });
});

describe('admin_cm functions', () => {
  test('get_list (all or one user), get_by_id, edit, delete on any user\'s image', async () => {
    const image = await createReady(user, USER, { name: 'for admin_cm' });
    const id = image.storage_image_id;
    const all = ok(await stack.cc1('admin_cm', 'get_list', admin, { caller_id: 1 }));
    expect(all.map((d: { storage_image_id: number }) => d.storage_image_id)).toContain(id);
    const mine = ok(await stack.cc1('admin_cm', 'get_list', admin, { caller_id: 1, user_id: USER }));
    expect(mine.every((d: { user_id: number }) => d.user_id === USER)).toBe(true);
    expect(ok(await stack.cc1('admin_cm', 'get_by_id', admin, { caller_id: 1, storage_image_id: id })).name).toBe('for admin_cm');
    ok(await stack.cc1('admin_cm', 'edit', admin, { caller_id: 1, storage_image_id: id, name: 'edited by admin' }));
    expect(ok(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: id })).name).toBe('edited by admin');
    ok(await stack.cc1('admin_cm', 'delete', admin, { caller_id: 1, storage_image_id: id }));
    refused(await stack.cc1('user', 'get_by_id', user, { caller_id: USER, storage_image_id: id }), 'image_get');
    const after = ok(await stack.cc1('admin_cm', 'get_list', admin, { caller_id: 1, user_id: USER }));
    expect(after.map((d: { storage_image_id: number }) => d.storage_image_id)).not.toContain(id);
    // An admin's caller_id must be their own too.
    refused(await stack.cc1('admin_cm', 'get_list', admin, { caller_id: USER }), 'user_permission');
  });
});

describe('Idempotency-Key on the CC1 API', () => {
  const body = { caller_id: USER, name: 'cc1 once', size: 1, disk_controller: 1 };
  test('the same create twice with one key: one image', async () => {
    const headers = { 'Idempotency-Key': 'cc1-create-1', authorization: `Bearer ${user}` };
    const first = ok(await stack.call('POST', '/user/storage_image/create/', { headers, body }));
    const second = ok(await stack.call('POST', '/user/storage_image/create/', { headers, body }));
    expect(second.storage_image_id).toBe(first.storage_image_id);
    const list = ok(await stack.cc1('user', 'get_list', user, { caller_id: USER }));
    expect(list.filter((d: { name: string }) => d.name === 'cc1 once')).toHaveLength(1);
  });

  test('the same key with another body: status idempotency_key_reused', async () => {
    const headers = { 'Idempotency-Key': 'cc1-create-2', authorization: `Bearer ${user}` };
    ok(await stack.call('POST', '/user/storage_image/create/', { headers, body }));
    refused(await stack.call('POST', '/user/storage_image/create/', { headers, body: { ...body, name: 'other' } }), 'idempotency_key_reused');
  });
});

describe('errors: HTTP 200 with the CC1 code in status, never 500', () => {
  test.each([
    ['size 0', 'create', { caller_id: USER, name: 'x', size: 0, disk_controller: 1 }, 'image_invalid_size'],
    ['no caller_id', 'get_list', {}, 'validation'],
    ['caller_id as text', 'get_list', { caller_id: 'abc' }, 'validation'],
    ['unknown disk_controller', 'create', { caller_id: USER, name: 'x', size: 1, disk_controller: 9 }, 'validation'],
    ['unknown filesystem', 'create', { caller_id: USER, name: 'x', size: 1, disk_controller: 1, filesystem: 1 }, 'validation'],
    ['a 46-character name', 'create', { caller_id: USER, name: 'n'.repeat(46), size: 1, disk_controller: 1 }, 'validation'],
    ['unknown id', 'get_by_id', { caller_id: USER, storage_image_id: 987654 }, 'image_get'],
  ])('%s', async (_what, fn, body, code) => {
    refused(await stack.cc1('user', fn, user, body), code);
  });

  test('malformed JSON: HTTP 200, status validation', async () => {
    const reply = await stack.call('POST', '/user/storage_image/get_list/', { token: user, rawBody: '{"caller_id": ' });
    refused(reply, 'validation');
  });

  test('quota: user_storage_limit', async () => {
    refused(await stack.cc1('user', 'create', user, { caller_id: USER, name: 'huge', size: 2_000_000, disk_controller: 1 }), 'user_storage_limit');
  });

  test('no token, expired or forged: 401; an unknown function: 404', async () => {
    expect((await stack.call('POST', '/user/storage_image/get_list/', { body: { caller_id: USER } })).status).toBe(401);
    const expired = await stack.token(USER, { expiresInSeconds: -5 });
    expect((await stack.cc1('user', 'get_list', expired, { caller_id: USER })).status).toBe(401);
    const forged = await stack.token(USER, { secret: 'forged' });
    expect((await stack.cc1('admin_cm', 'get_list', forged, { caller_id: USER })).status).toBe(401);
    expect((await stack.cc1('user', 'format_disk', user, { caller_id: USER })).status).toBe(404);
    expect((await stack.cc1('admin_cm', 'attach', admin, { caller_id: 1 })).status).toBe(404);
  });
});
