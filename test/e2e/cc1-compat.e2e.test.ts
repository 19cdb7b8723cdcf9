/**
 * CC1's own callers against `npm start`: the portal's request sequence as its web
 * interface sends it through the CLM (string ids, no Content-Type, cm_password on
 * admin_cm calls), and the dates as CC1's EC2 front end parses them (test/compat).
 */
import { adminCalls, checkQuotaCall, DICT_FIELD_TYPES, parseClmDate, portalSequence, QUOTA_FIELD_TYPES } from '../compat/cc1Callers';
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

jest.setTimeout(60_000);

let stack: E2eStack;
const USER = 651;
const VM = 6511;
let user: string;
let admin: string;

beforeAll(async () => {
  stack = await startE2eStack();
  [user, admin] = await Promise.all([stack.token(USER), stack.token(1, { admin: true })]);
  await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
});
afterAll(() => stack?.stop());

/** As the CLM sends it: a JSON body and no Content-Type header. */
const clm = async (area: 'user' | 'admin_cm', fn: string, token: string, body: unknown) => {
  const reply = await stack.call('POST', `/${area}/storage_image/${fn}/`, { token, rawBody: JSON.stringify(body) });
  expect({ fn, http: reply.status }).toEqual({ fn, http: 200 });
  return reply.body as { status: string; data: any };
};
const ok = (reply: { status: string; data: any }) => {
  expect(reply.status).toBe('ok');
  return reply.data;
};
const checkDict = (dict: Record<string, unknown>) => {
  expect(Object.keys(dict).sort()).toEqual(Object.keys(DICT_FIELD_TYPES).sort());
  for (const [field, type] of Object.entries(DICT_FIELD_TYPES)) expect({ field, ok: type.split('|').includes(typeof dict[field]) }).toEqual({ field, ok: true });
};

test('a disk is made, edited, attached, detached and removed through the portal\'s requests, string ids and all', async () => {
  const calls = portalSequence(USER, VM);
  const created = ok(await clm('user', 'create', user, calls.create));
  checkDict(created);
  const id: number = created.storage_image_id;
  expect({ size: created.size, disk_controller: created.disk_controller }).toEqual({ size: 16, disk_controller: 1 });
  await waitFor(
    () => clm('user', 'get_by_id', user, calls.getById(id)),
    (r) => r.data.state === 0,
  );
  const edited = ok(await clm('user', 'edit', user, calls.edit(id)));
  expect(edited).toBeNull(); // CC1's edit answered no data of its own
  expect(ok(await clm('user', 'get_by_id', user, calls.getById(id))).name).toBe('renamed in the WI');
  ok(await clm('user', 'attach', user, calls.attach(id)));
  const attached = ok(await clm('user', 'get_by_id', user, calls.getById(id)));
  expect({ vm_id: attached.vm_id, disk_dev: attached.disk_dev }).toEqual({ vm_id: VM, disk_dev: 'vdb' });
  ok(await clm('user', 'detach', user, calls.detach(id)));
  expect(ok(await clm('user', 'get_by_id', user, calls.getById(id))).vm_id).toBe('');
  ok(await clm('user', 'delete', user, calls.delete(id)));
  const listed = ok(await clm('user', 'get_list', user, calls.getList)) as { storage_image_id: number }[];
  expect(listed.map((d) => d.storage_image_id)).not.toContain(id);
});

test('creation_date parses with the EC2 front end\'s parseClmDate, to the second of the REST API\'s creationDate', async () => {
  const created = ok(await clm('user', 'create', user, portalSequence(USER, VM).create));
  const parsed = parseClmDate(created.creation_date);
  expect(parsed).not.toBeNull();
  const rest = await stack.call('GET', `/storage-images/${created.storage_image_id}`, { token: user });
  expect(parsed!.getTime()).toBe(Math.floor(Date.parse(rest.body.creationDate) / 1000) * 1000);
});

test('admin_cm calls with the CLM\'s cm_password and string ids work; the password is ignored', async () => {
  const created = ok(await clm('user', 'create', user, portalSequence(USER, VM).create));
  const calls = adminCalls(1, created.storage_image_id);
  const all = ok(await clm('admin_cm', 'get_list', admin, calls.getList)) as { storage_image_id: number }[];
  expect(all.map((d) => d.storage_image_id)).toContain(created.storage_image_id);
  checkDict(ok(await clm('admin_cm', 'get_by_id', admin, calls.getById)));
  ok(await clm('admin_cm', 'edit', admin, calls.edit));
  expect(ok(await clm('admin_cm', 'get_by_id', admin, calls.getById)).name).toBe('renamed by an admin');
});

test('a string that is not an id is refused as CC1 refused it, with data ""', async () => {
  for (const bad of ['abc', '1.5', '', '12a']) {
    const reply = await clm('user', 'get_by_id', user, { caller_id: String(USER), storage_image_id: bad });
    expect({ bad, reply }).toEqual({ bad, reply: { status: 'validation', data: '' } });
  }
});

test('the "Create new disk" dialog\'s user/user/check_quota/ answers the storage part of CC1\'s quota dict, from the quota ledger (GET /quota)', async () => {
  const owner = 652;
  const token = await stack.token(owner);
  const ask = async (body: unknown) => {
    const reply = await stack.call('POST', checkQuotaCall(owner).path, { token, rawBody: JSON.stringify(body) }); // as the CLM sends it: no Content-Type
    expect(reply.status).toBe(200);
    return reply.body as { status: string; data: any };
  };
  const before = ok(await ask(checkQuotaCall(owner).body));
  expect(Object.keys(before).sort()).toEqual(Object.keys(QUOTA_FIELD_TYPES).sort());
  for (const [field, type] of Object.entries(QUOTA_FIELD_TYPES)) expect({ field, type: typeof before[field] }).toEqual({ field, type });
  const rest = await stack.call('GET', '/quota', { token });
  expect(before).toEqual({ user_id: owner, storage: rest.body.limitMb, used_storage: rest.body.usedMb });
  // A disk made through the portal is counted at once: the free line drops by its size.
  ok(await clm('user', 'create', token, portalSequence(owner, VM).create));
  const after = ok(await ask(checkQuotaCall(owner).body));
  expect(after.storage - after.used_storage).toBe(before.storage - before.used_storage - 16);
  expect(after.used_storage).toBe((await stack.call('GET', '/quota', { token })).body.usedMb);
  // caller_id as a digit string, as CC1's CM took it; another user's caller_id is CC1's user_permission.
  expect(ok(await ask({ caller_id: String(owner) }))).toEqual(after);
  expect(await ask({ caller_id: USER })).toEqual({ status: 'user_permission', data: '' });
});
