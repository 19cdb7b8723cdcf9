/**
 * The interleavings of issue 18, each forced by hand through the real workflows over
 * DynamoDB Local: a host call is held at a gate while another workflow runs to the end.
 * Each failed before the host operations became sagas (application/saga.ts); the
 * explorer (saga-explorer.int.test.ts) tries orders nobody picked.
 */
import { reconcile } from '../../application/reconciler';
import { attachAtBoot, attachImage, createImage, detachImage, editImage, forceDetachImage, onVmStateChange, resizeImage, type ServiceDeps } from '../../application/storageImages';
import { handleCommand } from '../../application/commandHandling';
import { DomainError } from '../../domain/errors';
import { streamIdOf } from '../../domain/storageImage';
import { serviceDeps, useTestDynamo } from '../support/dynamo';

jest.setTimeout(120_000);
const dynamo = useTestDynamo();

/** A user per test: the tests share the tables, and each checks its own quota. */
let USER = 7700;
beforeEach(() => void (USER += 1));
const H1 = 'i-00000000000000a1';
const H2 = 'i-00000000000000a2';
const T0 = Date.parse('2026-05-01T10:00:00.000Z');
const t = (s: number) => new Date(T0 + s * 1000).toISOString();
const user = {
  kind: 'user' as const,
  get userId() {
    return USER;
  },
};
const admin = { kind: 'admin' as const, userId: 1 };

/** A promise held open until `open()`; `reached` resolves when the held call arrives. */
const gate = () => {
  let open!: () => void;
  let arrived!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  return { open, reached, pass: async () => (arrived(), opened) };
};

/** Fake hosts that also keep each disk file's size, so "file size = counted size" can be checked. */
const depsWithFiles = (quotaMb = 1000) => {
  const deps = serviceDeps(dynamo().stores, { defaultQuotaMb: quotaMb });
  const sizes = new Map<number, number>();
  deps.storage.createDiskFile = async ({ imageId, sizeMb }) => void sizes.set(imageId, sizeMb);
  deps.storage.resizeDiskFile = async ({ imageId, sizeMb }) => void sizes.set(imageId, Math.max(sizes.get(imageId) ?? 0, sizeMb));
  return { deps, sizes };
};

const readyImage = async (deps: ServiceDeps, sizeMb = 10, diskController: 'virtio' | 'usb' | 'sata' = 'virtio'): Promise<number> => {
  const view = await createImage(deps, { name: `img ${sizeMb}`, description: '', diskController, filesystem: 'raw', sizeMb }, user);
  await deps.storage.createDiskFile({ imageId: view.id, userId: USER, sizeMb, filesystem: 'raw', storage: 'default' });
  await handleCommand(deps, view.id, { type: 'MarkDiskReady', storage: 'default' }, { actor: { kind: 'system', reason: 'disk-file' }, now: new Date().toISOString() });
  return view.id;
};

const vmState = (vmId: number, state: 'running' | 'stopped', hostId: string, seconds: number, reason?: string) => ({
  vmId,
  userId: USER,
  domain: `vm-${vmId}-${USER}`,
  hostId,
  state,
  time: t(seconds),
  ...(reason ? { reason } : {}),
});

const stateOf = async (deps: ServiceDeps, imageId: number) => (await deps.events.load(streamIdOf(imageId))).state;
const attachmentOf = async (deps: ServiceDeps, imageId: number) => {
  const state = await stateOf(deps, imageId);
  return state.status === 'ok' ? state.attachment : null;
};
const codeOf = (error: unknown) => (error instanceof DomainError ? error.code : String(error));

test('resize pays before it grows: a create that commits while the host grows is refused, and the file is never larger than counted', async () => {
  const { deps, sizes } = depsWithFiles(30);
  const img = await readyImage(deps, 10);
  const held = gate();
  const grow = deps.storage.resizeDiskFile;
  deps.storage.resizeDiskFile = async (request) => (await held.pass(), grow(request));

  const resizing = resizeImage(deps, img, 26, user);
  await held.reached;
  // The growth is counted already: 26 of 30 MB. (Before: counted at the commit after the grow, so this create took 12 MB...)
  const create = await createImage(deps, { name: 'other', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 12 }, user).catch(codeOf);
  held.open();
  // ...and then the resize's commit failed with user_storage_limit, the file already 26 MB against 10 counted.
  expect(await resizing).toMatchObject({ sizeMb: 26 });
  expect(create).toBe('user_storage_limit');
  expect(await deps.quota.usedMb(USER)).toBe(26);
  expect(sizes.get(img)).toBe(26);
});

test('a crash between the grow and the outcome leaves the resize open; the reconciler finishes it, the quota counted once', async () => {
  const { deps, sizes } = depsWithFiles(100);
  const img = await readyImage(deps, 10);
  deps.storage.resizeDiskFile = async ({ imageId, sizeMb }) => {
    sizes.set(imageId, sizeMb);
    throw new Error('the process died here'); // not a host answer: the outcome never runs
  };
  await expect(resizeImage(deps, img, 40, user)).rejects.toThrow();
  expect(await stateOf(deps, img)).toMatchObject({ status: 'ok', image: { sizeMb: 10 }, operation: { type: 'resize', toMb: 40 } });
  expect(await deps.quota.usedMb(USER)).toBe(40); // reserved by the intent
  // The image is held meanwhile: no attach, revoke or other resize.
  expect(await resizeImage(deps, img, 50, user).catch(codeOf)).toBe('image_resize');

  deps.storage.resizeDiskFile = async ({ imageId, sizeMb }) => void sizes.set(imageId, Math.max(sizes.get(imageId) ?? 0, sizeMb));
  const report = await reconcile(deps, { settleMs: 0 });
  expect(report.repairs).toContainEqual({ kind: 'resize-completed', imageId: img });
  expect(await stateOf(deps, img)).toMatchObject({ status: 'ok', image: { sizeMb: 40 } });
  expect(await stateOf(deps, img)).not.toHaveProperty('operation');
  expect(await deps.quota.usedMb(USER)).toBe(40);
  expect(sizes.get(img)).toBe(40);
  expect(await deps.events.openOperations()).toEqual([]);
});

test('a resize the host refuses ends failed, and the quota it reserved is given back', async () => {
  const { deps } = depsWithFiles(100);
  const img = await readyImage(deps, 10);
  const { HostCommandError } = await import('../../application/ports');
  deps.storage.resizeDiskFile = async () => {
    throw new HostCommandError('failed', 'no space left on device');
  };
  expect(await resizeImage(deps, img, 60, user).catch(codeOf)).toBe('image_resize');
  expect(await stateOf(deps, img)).toMatchObject({ status: 'ok', image: { sizeMb: 10 } });
  expect(await deps.quota.usedMb(USER)).toBe(10);
  expect((await deps.events.readStream(streamIdOf(img))).events.at(-1)).toMatchObject({ type: 'StorageImageResizeFailed', data: { fromMb: 10, toMb: 60 } });
});

test('a detach that lost a race never ends a newer attachment of the image', async () => {
  const { deps } = depsWithFiles();
  const V = 901;
  await onVmStateChange(deps, vmState(V, 'running', H1, 0));
  const [img, other] = [await readyImage(deps), await readyImage(deps)];
  await attachImage(deps, img, V, user); // attach 1 on vdb
  const first = (await attachmentOf(deps, img))!;
  const held = gate();
  const unplug = deps.hypervisor.detachDisk;
  let calls = 0;
  deps.hypervisor.detachDisk = async (where) => (calls++ === 0 ? (await held.pass(), unplug(where)) : unplug(where));

  const slow = detachImage(deps, img, V, user);
  await held.reached; // the slow detach read attach 1 and asked virsh
  await detachImage(deps, img, V, user); // another detach ends attach 1
  await attachImage(deps, other, V, user); // vdb goes to another image
  await attachImage(deps, img, V, user); // attach 2 of img, on vdc
  const second = (await attachmentOf(deps, img))!;
  expect(second).toMatchObject({ diskDev: 'vdc', phase: 'attached' });
  held.open();
  // Before: the slow detach decided again on the fresh state and appended Detached for attach 2, freeing vdc.
  expect(await slow.catch(codeOf)).toBe('storage_image_detach');
  expect(await attachmentOf(deps, img)).toMatchObject({ attachId: second.attachId, diskDev: 'vdc' });
  expect((await deps.vms.get(V))!.devices.vdc).toMatchObject({ imageId: img, attachId: second.attachId });
  expect(first.attachId).not.toBe(second.attachId);
});

test('an attach whose outcome is refused (forced detach meanwhile) unplugs the disk before answering', async () => {
  const { deps } = depsWithFiles();
  const V = 902;
  await onVmStateChange(deps, vmState(V, 'running', H1, 0));
  const img = await readyImage(deps);
  const held = gate();
  const plug = deps.hypervisor.attachDisk;
  deps.hypervisor.attachDisk = async (request) => (await held.pass(), plug(request));

  const attaching = attachImage(deps, img, V, user);
  await held.reached;
  await forceDetachImage(deps, img, undefined, admin); // ends the attach in progress: AttachFailed, vdb freed
  held.open();
  expect(await attaching.catch(codeOf)).toBe('storage_image_attach');
  // Before: the domain kept the file, and a second attach elsewhere put one file on two VMs.
  expect(await deps.hypervisor.listDisks({ hostId: H1, domain: `vm-${V}-${USER}` })).toEqual([]);
  expect(await attachmentOf(deps, img)).toBeNull();
  expect((await deps.vms.get(V))!.devices).toEqual({});
});

test('migration, then a stop on the new host delivered before its running: the VM is stopped and takes no hot attach', async () => {
  const { deps } = depsWithFiles();
  const V = 903;
  await onVmStateChange(deps, vmState(V, 'running', H1, 0));
  const kept = await readyImage(deps);
  await attachImage(deps, kept, V, user);
  await onVmStateChange(deps, vmState(V, 'stopped', H1, 2, 'migrated'));
  // H2's stop (t4) arrives before H2's running (t3).
  const stop = await onVmStateChange(deps, vmState(V, 'stopped', H2, 4));
  expect(stop).toEqual({ applied: true, detached: [kept] });
  expect(await onVmStateChange(deps, vmState(V, 'running', H2, 3))).toEqual({ applied: false, detached: [] });
  // Before: the stop failed the hostId condition and was dropped; the older running applied; the VM stayed "running".
  expect(await deps.vms.get(V)).toMatchObject({ state: 'stopped', hostId: H2 });
  const img = await readyImage(deps);
  expect(await attachImage(deps, img, V, user).catch(codeOf)).toBe('storage_image_attach');
  // The old host's late plain stop counts for nothing once the VM left it.
  await onVmStateChange(deps, vmState(V, 'running', H2, 5));
  expect(await onVmStateChange(deps, vmState(V, 'stopped', H1, 6))).toEqual({ applied: false, detached: [] });
  expect(await deps.vms.get(V)).toMatchObject({ state: 'running', hostId: H2 });
});

test('a stop redelivered after the VM was made again detaches nothing attached after that stop (a boot attach)', async () => {
  const { deps } = depsWithFiles();
  const V = 904;
  await onVmStateChange(deps, vmState(V, 'running', H1, 0));
  await onVmStateChange(deps, vmState(V, 'stopped', H1, 1));
  const img = await readyImage(deps, 10, 'sata');
  await attachAtBoot(deps, V, USER, [img], { kind: 'portal', userId: USER });
  // Before: the redelivered stop (its time equals the record's) detached everything the VM's claims named.
  expect(await onVmStateChange(deps, vmState(V, 'stopped', H1, 1))).toEqual({ applied: false, detached: [] });
  expect(await attachmentOf(deps, img)).toMatchObject({ phase: 'attached', mode: 'boot', vmId: V });
});

test('an attach that lost a race decides again on fresh facts: the bus of the image as edited meanwhile', async () => {
  const { deps } = depsWithFiles();
  const V = 905;
  await onVmStateChange(deps, vmState(V, 'running', H1, 0));
  const img = await readyImage(deps, 10, 'virtio');
  const load = deps.events.load.bind(deps.events);
  let edited = false;
  deps.events = Object.assign(Object.create(Object.getPrototypeOf(deps.events)), deps.events, {
    load: async (streamId: string) => {
      const loaded = await load(streamId);
      if (!edited) {
        edited = true; // between the attach's read and its intent, the owner switches the image to usb
        await editImage(deps, img, { diskController: 'usb' }, user);
      }
      return loaded;
    },
  });
  // Before: the retry inside handleCommand kept vdb (the virtio device of its first read) for a usb disk.
  expect(await attachImage(deps, img, V, user)).toMatchObject({ diskController: 'usb', diskDev: 'sdb' });
  expect(await deps.hypervisor.listDisks({ hostId: H1, domain: `vm-${V}-${USER}` })).toEqual([expect.objectContaining({ dev: 'sdb' })]);
});

test("a boot attach checks \"not running\" in the write's condition: a VM that starts between the read and the write refuses it", async () => {
  const { deps } = depsWithFiles();
  const V = 906;
  const img = await readyImage(deps, 10, 'sata');
  const get = deps.vms.get.bind(deps.vms);
  let started = false;
  deps.vms = Object.assign(Object.create(Object.getPrototypeOf(deps.vms)), deps.vms, {
    get: async (vmId: number) => {
      const record = await get(vmId);
      if (!started) {
        started = true;
        await deps.vms.recordState(vmState(V, 'running', H1, 0));
      }
      return record;
    },
  });
  expect(await attachAtBoot(deps, V, USER, [img], { kind: 'portal', userId: USER }).catch(codeOf)).toBe('storage_image_attach');
  expect(await attachmentOf(deps, img)).toBeNull();
});
