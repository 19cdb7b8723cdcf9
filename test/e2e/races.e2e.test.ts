/**
 * The holes of the single-write store (issue 11), each over HTTP against `npm start` in a
 * child process (simulated hypervisor): every one of them failed on the code before the
 * transactional store.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setDomainDelay } from '../../local/simulatedVirsh/simulatedHosts';
import { REPO_ROOT, startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

jest.setTimeout(120_000);
const run = promisify(execFile);

let stack: E2eStack;
let portal: string;

beforeAll(async () => {
  stack = await startE2eStack({ env: { CC1_HYPERVISOR: 'simulated', DEFAULT_QUOTA_MB: '1000' } });
  portal = await stack.token(2, { portal: true });
});
afterAll(() => stack?.stop());

type Image = { id: number; state: string; vmId: number | null; diskDev: string | null; version: number };

const createReady = async (token: string, sizeMb = 4, controller = 'virtio'): Promise<Image> => {
  const created = await stack.rest('POST', '/storage-images', { token, body: { name: 'disk', diskController: controller, sizeMb } });
  expect(created.status).toBe(201);
  return (await waitFor(() => stack.rest('GET', `/storage-images/${created.body.id}`, { token }), (r) => r.body.state !== 'adding')).body;
};
const get = async (token: string, id: number): Promise<Image> => (await stack.rest('GET', `/storage-images/${id}`, { token })).body;
const all = async (token: string): Promise<Image[]> => (await stack.rest('GET', '/storage-images?limit=1000', { token })).body.items;
const typesOf = async (token: string, id: number): Promise<string[]> =>
  (await stack.rest('GET', `/storage-images/${id}/history?limit=1000`, { token })).body.items.map((e: { type: string }) => e.type);

describe('Idempotency-Key: a refused duplicate never changes what the original gets', () => {
  const USER = 1101;
  let user: string;
  beforeAll(async () => {
    user = await stack.token(USER);
  });

  test('after a 422 (the key reused with another body), the original retried gets the same image, no second one', async () => {
    const headers = { 'Idempotency-Key': 'k-422' };
    const first = await stack.rest('POST', '/storage-images', { token: user, headers, body: { name: 'a', diskController: 'virtio', sizeMb: 4 } });
    expect(first.status).toBe(201);
    const other = await stack.rest('POST', '/storage-images', { token: user, headers, body: { name: 'b', diskController: 'virtio', sizeMb: 4 } });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
    const retry = await stack.rest('POST', '/storage-images', { token: user, headers, body: { name: 'a', diskController: 'virtio', sizeMb: 4 } });
    expect(retry.status).toBe(201);
    expect(retry.body.id).toBe(first.body.id);
    expect((await all(user)).filter((i) => i.id !== first.body.id && (i as unknown as { name: string }).name === 'a')).toEqual([]);
  });

  test('after a 409 (a duplicate while the original still runs), the original retried gets the same answer, one attach', async () => {
    const VM = 11001;
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
    const image = await createReady(user);
    // The host answers slowly, so the original attach is still running when its duplicate arrives.
    await setDomainDelay(join(stack.dataDir, 'simulated-virsh.json'), `vm-${VM}-${USER}`, 3000);
    const headers = { 'Idempotency-Key': 'k-409' };
    const original = stack.rest('POST', `/storage-images/${image.id}/attach`, { token: user, headers, body: { vmId: VM } });
    await waitFor(() => typesOf(user, image.id), (types) => types.includes('StorageImageAttachRequested'));
    const duplicate = await stack.rest('POST', `/storage-images/${image.id}/attach`, { token: user, headers, body: { vmId: VM } });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error.code).toBe('idempotency_in_progress');
    const answer = await original;
    expect(answer.status).toBe(200);
    await setDomainDelay(join(stack.dataDir, 'simulated-virsh.json'), `vm-${VM}-${USER}`, 0);
    const retry = await stack.rest('POST', `/storage-images/${image.id}/attach`, { token: user, headers, body: { vmId: VM } });
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(answer.body);
    expect((await typesOf(user, image.id)).filter((t) => t === 'StorageImageAttached')).toHaveLength(1);
  });
});

test('six duplicate attaches of A, then B, then the VM stops: both detached, every device free again', async () => {
  const USER = 1102;
  const VM = 11002;
  const user = await stack.token(USER);
  await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
  const [a, b] = [await createReady(user), await createReady(user)];
  const replies = await Promise.all(Array.from({ length: 6 }, () => stack.rest('POST', `/storage-images/${a.id}/attach`, { token: user, body: { vmId: VM } })));
  expect(replies.filter((r) => r.status === 200)).toHaveLength(1);
  expect(replies.filter((r) => r.status === 409).every((r) => r.body.error.code === 'image_attached')).toBe(true);
  expect(await get(user, a.id)).toMatchObject({ vmId: VM, diskDev: 'vdb' });
  // A losing duplicate did not free A's device: B gets the next one.
  const second = await stack.rest('POST', `/storage-images/${b.id}/attach`, { token: user, body: { vmId: VM } });
  expect(second.status).toBe(200);
  expect(second.body.diskDev).toBe('vdc');
  await stack.putVmEvent({ vmId: VM, userId: USER, state: 'stopped' });
  for (const image of [a, b]) await waitFor(() => get(user, image.id), (i) => i.vmId === null);
  // Running again, the VM's devices are all free: the first attach gets vdb.
  await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
  expect((await stack.rest('POST', `/storage-images/${b.id}/attach`, { token: user, body: { vmId: VM } })).body.diskDev).toBe('vdb');
});

describe('a migration, in both arrival orders: the VM runs on its new host', () => {
  const t = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();
  const H1 = 'i-0000000000000aaa1';
  const H2 = 'i-0000000000000aaa2';
  test.each([
    ['the old host reports the stop first', 11003, ['stop', 'run']],
    ['the new host reports the start first', 11004, ['run', 'stop']],
  ])('%s', async (_name, VM, order) => {
    const USER = 1103;
    const user = await stack.token(USER);
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running', hostId: H1, time: t(0) });
    for (const step of order) {
      if (step === 'stop') await stack.putVmEvent({ vmId: VM, userId: USER, state: 'stopped', reason: 'migrated', hostId: H1, time: t(20) });
      else await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running', hostId: H2, time: t(10) });
    }
    const image = await createReady(user);
    const reply = await stack.rest('POST', `/storage-images/${image.id}/attach`, { token: user, body: { vmId: VM } });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ vmId: VM, diskDev: 'vdb' });
  });
});

test('quota under concurrent creates and revokes: never over the limit, exact afterwards', async () => {
  const USER = 1104;
  const user = await stack.token(USER);
  const create = () => stack.rest('POST', '/storage-images', { token: user, body: { name: 'q', diskController: 'virtio', sizeMb: 150 } });
  const first = await Promise.all(Array.from({ length: 10 }, create));
  expect(first.filter((r) => r.status === 201)).toHaveLength(6); // 6 x 150 <= 1000 < 7 x 150
  expect(first.filter((r) => r.status === 409).every((r) => r.body.error.code === 'user_storage_limit')).toBe(true);
  const made = first.filter((r) => r.status === 201).map((r) => r.body.id as number);
  for (const id of made) await waitFor(() => get(user, id), (i) => i.state === 'ok');
  // Revoke three while eight more try to get in: exactly three of them fit.
  const revokes = made.slice(0, 3).map((id) => stack.rest('DELETE', `/storage-images/${id}`, { token: user }));
  const creates = Array.from({ length: 8 }, create);
  const [revoked, second] = await Promise.all([Promise.all(revokes), Promise.all(creates)]);
  expect(revoked.every((r) => r.status === 200)).toBe(true);
  const admitted = second.filter((r) => r.status === 201).length;
  expect(admitted).toBeLessThanOrEqual(3);
  const live = (await all(user)).length;
  expect(live * 150).toBeLessThanOrEqual(1000);
  // Afterwards the quota is exact: exactly as many more fit as the ledger has room for.
  const more = await Promise.all(Array.from({ length: 8 }, create));
  expect(live + more.filter((r) => r.status === 201).length).toBe(6);
});

test('a boot-time attach refused midway leaves none of its images attached', async () => {
  const USER = 1105;
  const VM = 11005;
  const user = await stack.token(USER);
  const [one, two] = [await createReady(user), await createReady(user)];
  const someoneElses = await createReady(await stack.token(1199));
  const reply = await stack.rest('POST', `/vms/${VM}/disks`, { token: portal, body: { userId: USER, storageImageIds: [one.id, two.id, someoneElses.id] } });
  expect(reply.status).toBe(403);
  for (const image of [one, two]) expect(await get(user, image.id)).toMatchObject({ vmId: null, diskDev: null });
  // Nothing held on the VM: the same images without the stranger get vdb and vdc.
  const ok = await stack.rest('POST', `/vms/${VM}/disks`, { token: portal, body: { userId: USER, storageImageIds: [one.id, two.id] } });
  expect(ok.status).toBe(200);
  expect(ok.body.items.map((i: Image) => i.diskDev)).toEqual(['vdb', 'vdc']);
});

test('a rebuild of the read model while writes go on: lists miss nothing, during and after', async () => {
  const USER = 1106;
  const user = await stack.token(USER);
  const rebuild = run(process.execPath, [join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO_ROOT, 'ops', 'cli.ts'), 'rebuild', 'images'], {
    cwd: REPO_ROOT,
    env: { ...process.env, CC1_DATA_DIR: stack.dataDir },
    timeout: 90_000,
  });
  let done = false;
  void rebuild.finally(() => (done = true)).catch(() => undefined);
  const created: number[] = [];
  let lists = 0;
  while (!done || lists < 3) {
    const reply = await stack.rest('POST', '/storage-images', { token: user, body: { name: `r${created.length}`, diskController: 'virtio', sizeMb: 1 } });
    expect(reply.status).toBe(201);
    created.push(reply.body.id);
    const ids = (await all(user)).map((i) => i.id);
    expect(created.filter((id) => !ids.includes(id))).toEqual([]); // read-your-writes held throughout
    lists++;
  }
  const { stdout } = await rebuild;
  expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toMatchObject({ to: expect.stringMatching(/-images-v2$/) });
  const after = (await all(user)).map((i) => i.id);
  expect(created.filter((id) => !after.includes(id))).toEqual([]);
});
