/**
 * Several storages on the local stack (simulated virsh, the real SSM documents): a new
 * disk goes to the storage with the most free space (df, through CC1-StorageFreeSpace),
 * DiskReady records it, attach and the reconciler use that storage's path, revoke
 * removes the file there. The rule itself (ties, too small, none fits) is unit-tested
 * (test/unit/storageChoice.unit.test.ts).
 */
import '../../local/localDefaults';
import { existsSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reconcile } from '../../application/reconciler';
import { attachImage, createImage, detachImage, imageIdOfSource, revokeImage, type ServiceDeps } from '../../application/storageImages';
import { streamIdOf } from '../../domain/storageImage';
import { startLocalStack, type LocalStack } from '../../local/stack';

jest.setTimeout(120_000);

const USER = 601;
const HOST = 'mi-0123456789abcdef0';
const user = { kind: 'user', userId: USER } as const;
let stack: LocalStack;
let deps: ServiceDeps;
// The first storage on another filesystem when there is one (tmpfs), so the two differ in room.
const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/cc1-storage-') : mkdtempSync(join(tmpdir(), 'cc1-storage-'));

/** What df says is available, MiB; the emptiest (first on a tie) is where new disks go. */
const freeMb = (path: string): number => {
  const s = statfsSync(path);
  return Math.floor((s.bavail * s.bsize) / 1048576);
};
const emptiest = () => {
  const [first, second] = stack.storages;
  return freeMb(second!.path) > freeMb(first!.path) ? second! : first!;
};

beforeAll(async () => {
  stack = await startLocalStack({
    hypervisor: 'simulated',
    feedIntervalMs: 60_000,
    storages: [{ id: 'small', path: shm }, { id: 'big' }],
    config: { defaultQuotaMb: 1_000_000_000 },
  });
  deps = stack.container.deps;
});
afterAll(async () => {
  await stack?.close();
  rmSync(shm, { recursive: true, force: true });
});

test('two storages, each its own folder and managed instance', () => {
  expect(stack.storages.map((s) => s.id)).toEqual(['small', 'big']);
  expect(new Set(stack.storages.map((s) => s.hostId)).size).toBe(2);
  expect(deps.storage.storageIds).toEqual(['small', 'big']);
});

test('the free space document reports what df says', async () => {
  for (const s of stack.storages) {
    const reported = await deps.storage.freeSpaceMb(s.id);
    expect(Math.abs(reported - freeMb(s.path))).toBeLessThanOrEqual(2);
  }
});

test('the disk lands on the emptiest storage, recorded in DiskReady; attach, reconcile and revoke use it', async () => {
  const chosen = emptiest();
  const other = stack.storages.find((s) => s !== chosen)!;
  const view = await createImage(deps, { name: 'on the emptiest', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 4 }, user);
  await stack.drain();
  const { events } = await deps.events.readStream(streamIdOf(view.id));
  expect(events.map((e) => [e.type, e.data])).toEqual([
    ['StorageImageCreated', expect.anything()],
    ['StorageImageDiskReady', { storage: chosen.id, opId: `${streamIdOf(view.id)}@1` }],
  ]);
  const file = join(chosen.path, String(USER), String(view.id));
  expect(existsSync(file)).toBe(true);
  expect(existsSync(join(other.path, String(USER), String(view.id)))).toBe(false);
  expect(deps.storage.pathOf({ userId: USER, imageId: view.id, storage: chosen.id })).toBe(file);
  expect(imageIdOfSource(deps, file)).toBe(view.id);
  expect(imageIdOfSource(deps, join(other.path, String(USER), String(view.id)))).toBe(view.id); // any configured storage
  expect(imageIdOfSource(deps, join(tmpdir(), 'elsewhere', String(USER), String(view.id)))).toBeUndefined();

  // Attach: virsh is given that storage's file.
  const vmId = 7001;
  const change = { vmId, userId: USER, domain: `vm-${vmId}-${USER}`, hostId: HOST, state: 'running' as const, time: new Date().toISOString() };
  const res = await fetch(`${stack.url}/_local/events`, {
    method: 'POST',
    body: JSON.stringify({ Entries: [{ Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: JSON.stringify(change) }] }),
  });
  expect(res.status).toBe(200);
  const attached = await attachImage(deps, view.id, vmId, user);
  const disks = await deps.hypervisor.listDisks({ hostId: HOST, domain: `vm-${vmId}-${USER}` });
  expect(disks).toContainEqual({ dev: attached.diskDev, source: file });

  // The reconciler sees that disk as this image's, on its storage: nothing to repair.
  const report = await reconcile(deps, { settleMs: 0, vmIds: [vmId] });
  expect(report.repairs).toEqual([]);

  // Revoke removes the file from that storage.
  await detachImage(deps, view.id, vmId, user);
  await revokeImage(deps, view.id, user);
  await stack.drain();
  expect(existsSync(file)).toBe(false);
});

test('a disk no storage can hold fails with the reason; nothing is made', async () => {
  const most = Math.max(...stack.storages.map((s) => freeMb(s.path)));
  const sizeMb = Math.min(most + 1024, 2_000_000);
  if (sizeMb <= most) return; // a machine with more than 2 TB free: nothing to prove here
  const view = await createImage(deps, { name: 'too big', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb }, user);
  await stack.drain();
  const { state } = await deps.events.load(streamIdOf(view.id));
  expect(state).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^no storage has room for \d+ MB/) });
  for (const s of stack.storages) expect(existsSync(join(s.path, String(USER), String(view.id)))).toBe(false);
});
