/**
 * A crash at every point of every host operation (application/saga.ts, HOST_OPERATIONS),
 * over DynamoDB Local: the operation runs through the real workflow and dies right after
 * its intent step or right after its host call. "Dies" means every later store request
 * and host call of that process hangs for ever, so nothing after the point is written,
 * as in a crash (the SIGKILLed children of faults.int.test.ts do the same for attach and
 * detach with a real process). Then the reconciler runs, as its schedule would, and:
 * - the repair it reports is the one the crash table (docs/event-store.md) names;
 * - no operation is left open, and the image's history has no gap;
 * - the quota ledger is the sum of the live images, and the disk file is its counted size;
 * - the records agree with the host (the disk on the VM exactly when the image is attached).
 */
import { reconcile } from '../../application/reconciler';
import { HOST_OPERATIONS, type HostOperationName } from '../../application/saga';
import { handleCommand } from '../../application/commandHandling';
import { onStoredEventForDiskFiles } from '../../application/storageImages';
import { attachImage, createImage, detachImage, onVmStateChange, resizeImage, retryDiskFile, revokeImage, type ServiceDeps } from '../../application/storageImages';
import type { StoredEvent } from '../../application/storePorts';
import { operationIdOf, streamIdOf, type StorageImageEventType } from '../../domain/storageImage';
import { serviceDeps, useTestDynamo } from '../support/dynamo';

jest.setTimeout(120_000);
const dynamo = useTestDynamo();

const HOST_ID = 'i-00000000000000c1';
let USER = 6600;
beforeEach(() => void (USER += 1));
const user = () => ({ kind: 'user' as const, userId: USER });
const admin = { kind: 'admin' as const, userId: 1 };
const system = { actor: { kind: 'system' as const, reason: 'disk-file' as const }, now: new Date().toISOString() };

/** The hosts: disk files with their sizes, and each domain's disks. */
interface Hosts {
  files: Map<number, number>;
  disks: Map<string, Map<string, string>>; // domain -> dev -> file
}

const hostsFor = (deps: ServiceDeps, hosts: Hosts): void => {
  const disksOf = (domain: string) => hosts.disks.get(domain) ?? hosts.disks.set(domain, new Map()).get(domain)!;
  deps.hypervisor = {
    attachDisk: async ({ domain, dev, file }) => void disksOf(domain).set(dev, file),
    detachDisk: async ({ domain, dev }) => void disksOf(domain).delete(dev),
    listDisks: async ({ domain }) => [...disksOf(domain)].map(([dev, source]) => ({ dev, source })),
    resizeDisk: async ({ domain, dev, sizeMb }) => {
      const imageId = Number(disksOf(domain).get(dev)?.split('/').at(-1));
      hosts.files.set(imageId, Math.max(hosts.files.get(imageId) ?? 0, sizeMb));
    },
  };
  deps.storage = {
    ...deps.storage,
    createDiskFile: async ({ imageId, sizeMb }) => void hosts.files.set(imageId, sizeMb),
    deleteDiskFile: async ({ imageId }) => void hosts.files.delete(imageId),
    resizeDiskFile: async ({ imageId, sizeMb }) => void hosts.files.set(imageId, Math.max(hosts.files.get(imageId) ?? 0, sizeMb)),
  };
};

type Point = { after: 'intent'; event: StorageImageEventType } | { after: 'host'; call: string };

/**
 * The same process's dependencies, dying at `point`: the step or call there completes,
 * then it and everything after it hang. `died` resolves when the point is reached.
 */
const dyingAt = (deps: ServiceDeps, point: Point): { deps: ServiceDeps; died: Promise<void> } => {
  let dead = false;
  let die!: () => void;
  const died = new Promise<void>((resolve) => (die = resolve));
  const hang = () => new Promise<never>(() => undefined);
  const wrap = <T extends object>(target: T, isThePoint: (method: string, args: unknown[], result: unknown) => boolean): T =>
    new Proxy(target, {
      get(t, method) {
        const value = Reflect.get(t, method) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (dead) return hang();
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(t, args);
          if (dead) return hang();
          if (isThePoint(String(method), args, result)) {
            dead = true;
            die();
            return hang();
          }
          return result;
        };
      },
    });
  const never = () => false;
  const intentHere = (method: string, _args: unknown[], result: unknown) =>
    point.after === 'intent' && method === 'commit' && (result as StoredEvent[])[0]?.type === point.event;
  const hostHere = (method: string) => point.after === 'host' && method === point.call;
  return {
    died,
    deps: {
      ...deps,
      events: wrap(deps.events, intentHere),
      readModel: wrap(deps.readModel, never),
      vms: wrap(deps.vms, never),
      quota: wrap(deps.quota, never),
      ids: wrap(deps.ids, never),
      hypervisor: wrap(deps.hypervisor, hostHere),
      storage: { ...wrap(deps.storage, hostHere), storageIds: deps.storage.storageIds, pathOf: deps.storage.pathOf },
    },
  };
};

interface World {
  deps: ServiceDeps;
  hosts: Hosts;
  vmId: number;
  domain: string;
}

const world = async (): Promise<World> => {
  const deps = serviceDeps(dynamo().stores, { defaultQuotaMb: 100 });
  const hosts: Hosts = { files: new Map(), disks: new Map() };
  hostsFor(deps, hosts);
  const vmId = 660_000 + USER;
  const domain = `vm-${vmId}-${USER}`;
  await onVmStateChange(deps, { vmId, userId: USER, domain, hostId: HOST_ID, state: 'running', time: new Date().toISOString() });
  return { deps, hosts, vmId, domain };
};

/** A create, with its disk file made as the stream reaction makes it. */
const createWithFile = async (deps: ServiceDeps, sizeMb = 10): Promise<number> => {
  const view = await createImage(deps, { name: `d${sizeMb}`, description: '', diskController: 'virtio', filesystem: 'raw', sizeMb }, user());
  await reactTo(deps, view.id);
  return view.id;
};

/** The disk-file reaction to the image's newest event, as the stream delivers it. */
const reactTo = async (deps: ServiceDeps, imageId: number): Promise<void> => {
  const { events } = await deps.events.readStream(streamIdOf(imageId));
  await onStoredEventForDiskFiles(deps, events.at(-1)!);
};

interface CrashCase {
  operation: HostOperationName;
  point: Point;
  /** Before the crash, with healthy dependencies; returns the image. */
  setup: (w: World) => Promise<number>;
  /** The operation, run by the process that dies. */
  run: (deps: ServiceDeps, w: World, imageId: number) => Promise<unknown>;
  repair: string;
  /** The image's last events after the repair. */
  endsWith: StorageImageEventType[];
}

const CASES: CrashCase[] = [
  {
    operation: 'attach',
    point: { after: 'intent', event: 'StorageImageAttachRequested' },
    setup: ({ deps }) => createWithFile(deps),
    run: (deps, w, img) => attachImage(deps, img, w.vmId, user()),
    repair: 'attach-failed',
    endsWith: ['StorageImageAttachRequested', 'StorageImageAttachFailed'],
  },
  {
    operation: 'attach',
    point: { after: 'host', call: 'attachDisk' },
    setup: ({ deps }) => createWithFile(deps),
    run: (deps, w, img) => attachImage(deps, img, w.vmId, user()),
    repair: 'attach-completed',
    endsWith: ['StorageImageAttachRequested', 'StorageImageAttached'],
  },
  {
    operation: 'detach',
    point: { after: 'host', call: 'detachDisk' },
    setup: async (w) => {
      const img = await createWithFile(w.deps);
      await attachImage(w.deps, img, w.vmId, user());
      return img;
    },
    run: (deps, w, img) => detachImage(deps, img, w.vmId, user()),
    repair: 'attached-without-disk',
    endsWith: ['StorageImageAttached', 'StorageImageDetached'],
  },
  {
    operation: 'resize',
    point: { after: 'intent', event: 'StorageImageResizeRequested' },
    setup: ({ deps }) => createWithFile(deps),
    run: (deps, _w, img) => resizeImage(deps, img, 30, user()),
    repair: 'resize-completed',
    endsWith: ['StorageImageResizeRequested', 'StorageImageResized'],
  },
  {
    operation: 'resize',
    point: { after: 'host', call: 'resizeDiskFile' },
    setup: ({ deps }) => createWithFile(deps),
    run: (deps, _w, img) => resizeImage(deps, img, 30, user()),
    repair: 'resize-completed',
    endsWith: ['StorageImageResizeRequested', 'StorageImageResized'],
  },
  {
    operation: 'createFile',
    point: { after: 'intent', event: 'StorageImageCreated' },
    setup: async () => 0,
    run: (deps) => createImage(deps, { name: 'new', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 10 }, user()),
    repair: 'disk-file-finished',
    endsWith: ['StorageImageCreated', 'StorageImageDiskReady'],
  },
  {
    operation: 'createFile',
    point: { after: 'host', call: 'createDiskFile' },
    setup: async ({ deps }) => (await createImage(deps, { name: 'new', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 10 }, user())).id,
    run: (deps, _w, img) => reactTo(deps, img),
    repair: 'disk-file-finished',
    endsWith: ['StorageImageCreated', 'StorageImageDiskReady'],
  },
  ...(['intent', 'host'] as const).map(
    (after): CrashCase => ({
      operation: 'retryFile',
      point: after === 'intent' ? { after, event: 'StorageImageDiskRetried' } : { after, call: 'createDiskFile' },
      setup: async ({ deps }) => {
        const { id } = await createImage(deps, { name: 'failed', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 10 }, user());
        await handleCommand(deps, id, { type: 'MarkDiskFailed', reason: 'the storage host could not make the disk file', opId: operationIdOf(id, 1) }, system);
        return id;
      },
      // The admin's retry, then the stream's reaction to it (the crash in one or the other).
      run: async (deps, _w, img) => (await retryDiskFile(deps, img, admin), reactTo(deps, img)),
      repair: 'disk-file-finished',
      endsWith: ['StorageImageDiskFailed', 'StorageImageDiskRetried', 'StorageImageDiskReady'],
    }),
  ),
  ...(['intent', 'host'] as const).map(
    (after): CrashCase => ({
      operation: 'removeFile',
      point: after === 'intent' ? { after, event: 'StorageImageRevoked' } : { after, call: 'deleteDiskFile' },
      setup: ({ deps }) => createWithFile(deps),
      run: async (deps, _w, img) => (await revokeImage(deps, img, user()), reactTo(deps, img)),
      repair: 'disk-file-removed',
      endsWith: ['StorageImageRevoked', 'StorageImageDiskFileRemoved'],
    }),
  ),
];

const nameOf = (c: CrashCase) => `${c.operation}, dead after its ${c.point.after === 'intent' ? `intent (${c.point.event})` : `host call (${c.point.call})`}`;

test('every host operation has a crash case after its intent (when it has one) and after its host call', () => {
  const expected = Object.entries(HOST_OPERATIONS).flatMap(([name, op]) => [...('intent' in op ? [`${name}/intent`] : []), `${name}/host`]);
  expect(CASES.map((c) => `${c.operation}/${c.point.after}`).sort()).toEqual(expected.sort());
});

test.each(CASES.map((c) => [nameOf(c), c] as const))('%s -> the reconciler finishes it', async (_name, c) => {
  const w = await world();
  const before = await c.setup(w);
  const dying = dyingAt(w.deps, c.point);
  const outcome = c.run(dying.deps, w, before).then(
    () => 'returned',
    (error: unknown) => `failed: ${String(error)}`,
  );
  // The process must die at the point: an operation that ran to the end (or failed first) never reached it.
  expect(await Promise.race([dying.died.then(() => 'died'), outcome])).toBe('died');
  const img = before || (await w.deps.readModel.listByOwner(USER, { limit: 10, includeRevoked: true })).items[0]!.id;

  const report = await reconcile(w.deps, { settleMs: 0 }); // every VM and the open operations, as the schedule runs it
  expect(report.repairs.filter((r) => r.imageId === img).map((r) => r.kind)).toEqual([c.repair]);
  expect((await w.deps.events.openOperations()).filter((op) => op.imageId === img)).toEqual([]);

  const { events } = await w.deps.events.readStream(streamIdOf(img));
  expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1));
  expect(events.slice(-c.endsWith.length).map((e) => e.type)).toEqual(c.endsWith);

  const { state } = await w.deps.events.load(streamIdOf(img));
  if (state.status === 'none') throw new Error('no image');
  const live = state.status === 'locked' ? 0 : state.image.sizeMb;
  expect(await w.deps.quota.usedMb(USER)).toBe(live);
  expect(w.hosts.files.get(img)).toBe(state.status === 'locked' ? undefined : state.image.sizeMb);
  const attached = state.status === 'ok' && state.attachment ? { [state.attachment.diskDev]: w.deps.storage.pathOf({ userId: USER, imageId: img, storage: 'default' }) } : {};
  expect(Object.fromEntries(w.hosts.disks.get(w.domain) ?? [])).toEqual(attached);
  expect(Object.keys((await w.deps.vms.get(w.vmId))?.devices ?? {})).toEqual(Object.keys(attached));
});
