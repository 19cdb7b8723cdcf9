/**
 * Races through the application layer against DynamoDB Local (one transaction per
 * command step) and the real SSM documents run by the local Run Command endpoint
 * (simulated virsh, so the races are about the store, not libvirt's speed).
 */
import '../../local/localDefaults';
import { attachImage, createImage, detachImage, onVmStateChange, type ServiceDeps } from '../../application/storageImages';
import { DomainError } from '../../domain/errors';
import { streamIdOf } from '../../domain/storageImage';
import { startLocalStack, type LocalStack } from '../../local/stack';

jest.setTimeout(120_000);

const USER = 501;
const HOST = 'mi-0123456789abcdef0';
let stack: LocalStack;
let deps: ServiceDeps;

const runVm = async (vmId: number, userId = USER) => {
  const change = { vmId, userId, domain: `vm-${vmId}-${userId}`, hostId: HOST, state: 'running' as const, time: new Date().toISOString() };
  // The local EventBridge entry also marks the simulated domain as running.
  const res = await fetch(`${stack.url}/_local/events`, {
    method: 'POST',
    body: JSON.stringify({ Entries: [{ Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: JSON.stringify(change) }] }),
  });
  expect(res.status).toBe(200);
};

const readyImages = async (n: number, diskController: 'virtio' | 'usb' = 'virtio') => {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const view = await createImage(deps, { name: `disk ${i}`, description: '', diskController, filesystem: 'raw', sizeMb: 1 }, { kind: 'user', userId: USER });
    ids.push(view.id);
  }
  await stack.drain(); // the disk-file reaction makes the files and marks them ready
  for (const id of ids) expect((await deps.events.load(streamIdOf(id))).state.status).toBe('ok');
  return ids;
};

const settle = <T>(promises: Promise<T>[]) => Promise.allSettled(promises);

beforeAll(async () => {
  stack = await startLocalStack({ hypervisor: 'simulated', feedIntervalMs: 60_000 });
  deps = stack.container.deps;
});
afterAll(async () => {
  await stack?.close();
});

test('40 concurrent attaches to one VM: no device given twice, never more than the maximum (10)', async () => {
  await runVm(1001);
  const ids = await readyImages(40);
  const results = await settle(ids.map((id) => attachImage(deps, id, 1001, { kind: 'user', userId: USER })));
  const won = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ diskDev: string | null }>).value.diskDev);
  const lost = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as DomainError);
  expect(won).toHaveLength(10);
  expect(new Set(won).size).toBe(10);
  expect([...won].sort()).toEqual(['vdb', 'vdc', 'vdd', 'vde', 'vdf', 'vdg', 'vdh', 'vdi', 'vdj', 'vdk']);
  expect(lost).toHaveLength(30);
  for (const error of lost) expect(error.code).toBe('storage_image_attach');
  // The records agree: 10 claims, each held by an image attached there.
  const vm = await deps.vms.get(1001);
  expect(Object.keys(vm!.devices)).toHaveLength(10);
  for (const [dev, claim] of Object.entries(vm!.devices)) {
    const { state } = await deps.events.load(streamIdOf(claim.imageId));
    // The claim names the attach that holds it: only that attach's outcome may free it.
    expect(state.status === 'ok' && state.attachment).toMatchObject({ phase: 'attached', vmId: 1001, diskDev: dev, attachId: claim.attachId });
  }
  // ...and so does the host.
  const onHost = await deps.hypervisor.listDisks({ hostId: HOST, domain: `vm-1001-${USER}` });
  expect(onHost.map((d) => d.dev).sort()).toEqual(Object.keys(vm!.devices).sort());
});

test('six concurrent attaches of one image to one VM: one wins; a losing duplicate frees nothing; a second image gets the next device; a stop detaches both', async () => {
  await runVm(1007);
  const [a, b] = await readyImages(2);
  const results = await settle(Array.from({ length: 6 }, () => attachImage(deps, a!, 1007, { kind: 'user', userId: USER })));
  const won = results.filter((r) => r.status === 'fulfilled');
  expect(won).toHaveLength(1);
  for (const r of results.filter((r) => r.status === 'rejected')) expect(((r as PromiseRejectedResult).reason as DomainError).code).toBe('image_attached');
  // Before attach ids, a loser released vdb here (its release matched on the image only).
  expect(Object.fromEntries(Object.entries((await deps.vms.get(1007))!.devices).map(([dev, c]) => [dev, c.imageId]))).toEqual({ vdb: a });
  await expect(attachImage(deps, b!, 1007, { kind: 'user', userId: USER })).resolves.toMatchObject({ diskDev: 'vdc' });
  const stop = await onVmStateChange(deps, { vmId: 1007, userId: USER, domain: `vm-1007-${USER}`, hostId: HOST, state: 'stopped', time: new Date().toISOString(), reason: 'shutdown' });
  expect([...stop.detached].sort((x, y) => x - y)).toEqual([a, b].sort((x, y) => x! - y!));
  expect((await deps.vms.get(1007))!.devices).toEqual({});
  for (const id of [a!, b!]) expect((await deps.events.load(streamIdOf(id))).state).toMatchObject({ status: 'ok', attachment: null });
});

test('the same image attached concurrently to two VMs: exactly one wins, the other VM keeps no claim', async () => {
  await runVm(1002);
  await runVm(1003);
  for (let round = 0; round < 5; round++) {
    const [id] = await readyImages(1);
    const results = await settle([1002, 1003].map((vmId) => attachImage(deps, id!, vmId, { kind: 'user', userId: USER })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const winner = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ vmId: number | null }>).value.vmId!;
    const loser = winner === 1002 ? 1003 : 1002;
    const loserVm = await deps.vms.get(loser);
    expect(Object.values(loserVm?.devices ?? {}).some((c) => c.imageId === id)).toBe(false);
    const onLoserHost = await deps.hypervisor.listDisks({ hostId: HOST, domain: `vm-${loser}-${USER}` });
    expect(onLoserHost.some((d) => d.source.endsWith(`/${USER}/${id}`))).toBe(false);
    await detachImage(deps, id!, winner, { kind: 'user', userId: USER });
  }
});

test('a redelivered VM stop detaches once; a stale running event changes nothing', async () => {
  await runVm(1004);
  const [id] = await readyImages(1);
  await attachImage(deps, id!, 1004, { kind: 'user', userId: USER });
  const stop = { vmId: 1004, userId: USER, domain: `vm-1004-${USER}`, hostId: HOST, state: 'stopped' as const, time: new Date().toISOString(), reason: 'shutdown' };
  const first = await onVmStateChange(deps, stop);
  const again = await onVmStateChange(deps, stop);
  expect(first.detached).toEqual([id]);
  expect(again.detached).toEqual([]);
  const stale = await onVmStateChange(deps, { ...stop, state: 'running', time: new Date(Date.parse(stop.time) - 1000).toISOString() });
  expect(stale.applied).toBe(false);
  expect((await deps.vms.get(1004))!.state).toBe('stopped');
  const { events: history } = await deps.events.readStream(streamIdOf(id!));
  expect(history.filter((e) => e.type === 'StorageImageDetached')).toHaveLength(1);
  expect(history.at(-1)!.cause).toEqual({ kind: 'system', reason: 'vm-stopped' });
});

test('after a migration, the old host stop (even if newer) neither stops the VM nor detaches its disks', async () => {
  await runVm(1005);
  const [id] = await readyImages(1);
  await attachImage(deps, id!, 1005, { kind: 'user', userId: USER });
  const t0 = Date.now();
  const newHost = 'mi-0123456789abcdef1';
  await onVmStateChange(deps, { vmId: 1005, userId: USER, domain: `vm-1005-${USER}`, hostId: newHost, state: 'running', time: new Date(t0 + 1000).toISOString() });
  const oldStop = await onVmStateChange(
    deps,
    { vmId: 1005, userId: USER, domain: `vm-1005-${USER}`, hostId: HOST, state: 'stopped', time: new Date(t0 + 2000).toISOString(), reason: 'migrated' },
  );
  expect(oldStop).toEqual({ applied: false, detached: [] });
  expect(await deps.vms.get(1005)).toMatchObject({ state: 'running', hostId: newHost });
  expect((await deps.events.load(streamIdOf(id!))).state).toMatchObject({ attachment: { phase: 'attached', vmId: 1005 } });
});

test('a migration whose old-host stop (newer) arrives before the new host runs it: the VM ends running on the new host, disks kept', async () => {
  await runVm(1006);
  const [id] = await readyImages(1);
  await attachImage(deps, id!, 1006, { kind: 'user', userId: USER });
  const t0 = Date.now();
  const newHost = 'mi-0123456789abcdef1';
  const domain = `vm-1006-${USER}`;
  const oldStop = await onVmStateChange(deps, { vmId: 1006, userId: USER, domain, hostId: HOST, state: 'stopped', time: new Date(t0 + 2000).toISOString(), reason: 'migrated' });
  expect(oldStop.detached).toEqual([]);
  await onVmStateChange(deps, { vmId: 1006, userId: USER, domain, hostId: newHost, state: 'running', time: new Date(t0 + 1000).toISOString() });
  expect(await deps.vms.get(1006)).toMatchObject({ state: 'running', hostId: newHost });
  expect((await deps.events.load(streamIdOf(id!))).state).toMatchObject({ attachment: { phase: 'attached', vmId: 1006 } });
});
