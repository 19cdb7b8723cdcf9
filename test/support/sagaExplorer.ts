/**
 * A model-based explorer of interleavings (issue 18): random sets of concurrent commands
 * against the real workflows and DynamoDB Local, with every host call (and every VM
 * start or stop on the host) held by fast-check's scheduler and released in an order it
 * picks. After each run the invariants of SPEC section 3 are checked against the
 * records and a model of the hosts. fast-check prints the seed and path of a failure;
 * EXPLORE_SEED / EXPLORE_PATH replay it.
 */
import fc from 'fast-check';
import { handleCommand } from '../../application/commandHandling';
import { HostCommandError } from '../../application/ports';
import { reconcile } from '../../application/reconciler';
import {
  attachImage,
  createImage,
  detachImage,
  editImage,
  forceDetachImage,
  onVmStateChange,
  resizeImage,
  revokeImage,
  type ServiceDeps,
} from '../../application/storageImages';
import { DomainError } from '../../domain/errors';
import { streamIdOf } from '../../domain/storageImage';
import type { DynamoStores } from '../../adapters/dynamodb';
import { serviceDeps } from './dynamo';

export type Op =
  | { kind: 'create'; sizeMb: number }
  | { kind: 'resize'; image: number; sizeMb: number }
  | { kind: 'attach'; image: number; vm: number }
  | { kind: 'detach'; image: number }
  | { kind: 'forceDetach'; image: number }
  | { kind: 'revoke'; image: number }
  | { kind: 'edit'; image: number; diskController: 'virtio' | 'usb' }
  | { kind: 'stop'; vm: number }
  | { kind: 'start'; vm: number };

const POOL = 3; // ready images each run starts with
const VMS = 2;
const QUOTA_MB = 40;

export const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('create' as const), sizeMb: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('resize' as const), image: fc.nat(POOL - 1), sizeMb: fc.integer({ min: 6, max: 24 }) }),
  fc.record({ kind: fc.constant('attach' as const), image: fc.nat(POOL - 1), vm: fc.nat(VMS - 1) }),
  fc.record({ kind: fc.constant('detach' as const), image: fc.nat(POOL - 1) }),
  fc.record({ kind: fc.constant('forceDetach' as const), image: fc.nat(POOL - 1) }),
  fc.record({ kind: fc.constant('revoke' as const), image: fc.nat(POOL - 1) }),
  fc.record({ kind: fc.constant('edit' as const), image: fc.nat(POOL - 1), diskController: fc.constantFrom('virtio' as const, 'usb' as const) }),
  fc.record({ kind: fc.constant('stop' as const), vm: fc.nat(VMS - 1) }),
  fc.record({ kind: fc.constant('start' as const), vm: fc.nat(VMS - 1) }),
);

/** The hosts as the model sees them: disk files with their sizes, running domains with their disks. */
interface HostModel {
  files: Map<number, number>;
  running: Set<string>;
  disks: Map<string, Map<string, string>>; // domain -> dev -> file
  /** Every (domain, dev, file) the hypervisor really attached. */
  everAttached: Set<string>;
}

/** A resize workflow to explore (the real one, or a planted bug). */
export type ResizeWorkflow = (deps: ServiceDeps, imageId: number, sizeMb: number, actor: { kind: 'user'; userId: number }) => Promise<unknown>;

let runNo = 0;

/** One run: the pool made, every op started at once, host calls in the scheduler's order, then the invariants. */
export const exploreOnce = async (stores: DynamoStores, s: fc.Scheduler, ops: Op[], resize: ResizeWorkflow = resizeImage): Promise<void> => {
  runNo += 1;
  const userId = 90_000 + runNo; // tables are shared by runs: each has its own user and VMs
  const vmIds = Array.from({ length: VMS }, (_, i) => 900_000 + runNo * 10 + i);
  const actor = { kind: 'user' as const, userId };
  const deps: ServiceDeps = serviceDeps(stores, { defaultQuotaMb: QUOTA_MB, maxDisksPerVm: 2 });
  const host: HostModel = { files: new Map(), running: new Set(), disks: new Map(), everAttached: new Set() };
  const domainOf = (vmId: number) => `vm-${vmId}-${userId}`;
  const hostId = 'i-0000000000000e01';
  let clock = 0;
  const vmTime = () => new Date(Date.UTC(2026, 0, 1) + ++clock * 1000).toISOString();

  // The model hosts; every call waits for the scheduler first (at most one holds the host at a time).
  const held = <A extends unknown[], R>(label: string, fn: (...args: A) => R) => async (...args: A): Promise<R> => {
    await s.schedule(Promise.resolve(), label);
    return fn(...args);
  };
  const domainDisks = (domain: string) => {
    if (!host.running.has(domain)) throw new HostCommandError('unknown_domain', `domain ${domain} is not running`);
    return host.disks.get(domain) ?? host.disks.set(domain, new Map()).get(domain)!;
  };
  deps.hypervisor = {
    attachDisk: held('attachDisk', ({ domain, dev, file }: { domain: string; dev: string; file: string }) => {
      const disks = domainDisks(domain);
      if (disks.has(dev)) throw new HostCommandError('failed', `target ${dev} already exists`);
      disks.set(dev, file);
      host.everAttached.add(`${domain}/${dev}/${file}`);
    }),
    detachDisk: held('detachDisk', ({ domain, dev }: { domain: string; dev: string }) => {
      const disks = domainDisks(domain);
      if (!disks.delete(dev)) throw new HostCommandError('failed', `no disk ${dev}`);
    }),
    listDisks: held('listDisks', ({ domain }: { domain: string }) => [...domainDisks(domain)].map(([dev, source]) => ({ dev, source }))),
    resizeDisk: held('resizeDisk', ({ domain, dev, sizeMb }: { domain: string; dev: string; sizeMb: number }) => {
      const file = domainDisks(domain).get(dev);
      if (!file) throw new HostCommandError('failed', `no disk ${dev}`);
      const imageId = Number(file.split('/').at(-1));
      host.files.set(imageId, Math.max(host.files.get(imageId) ?? 0, sizeMb));
    }),
  } as ServiceDeps['hypervisor'];
  const files = deps.storage;
  deps.storage = {
    ...files,
    createDiskFile: held('createDiskFile', ({ imageId, sizeMb }: { imageId: number; sizeMb: number }) => void host.files.set(imageId, sizeMb)),
    deleteDiskFile: held('deleteDiskFile', ({ imageId }: { imageId: number }) => void host.files.delete(imageId)),
    resizeDiskFile: held('resizeDiskFile', ({ imageId, sizeMb }: { imageId: number; sizeMb: number }) => {
      host.files.set(imageId, Math.max(host.files.get(imageId) ?? 0, sizeMb));
    }),
  } as ServiceDeps['storage'];

  const makeFile = async (imageId: number) => {
    await deps.storage.createDiskFile({ imageId, userId, sizeMb: (await sizeOf(deps, imageId))!, filesystem: 'raw', storage: 'default' });
    await handleCommand(deps, imageId, { type: 'MarkDiskReady', storage: 'default' }, { actor: { kind: 'system', reason: 'disk-file' }, now: new Date().toISOString() });
  };
  const setRunning = async (vmId: number, running: boolean) => {
    const domain = domainOf(vmId);
    await held(running ? 'start' : 'stop', () => {
      if (running) host.running.add(domain);
      else host.running.delete(domain), host.disks.delete(domain);
    })();
    await onVmStateChange(deps, { vmId, userId, domain, hostId, state: running ? 'running' : 'stopped', time: vmTime() });
  };

  // The pool: ready images, running VMs (set up before the scheduler's turn: in order).
  const pool: number[] = [];
  const setup = (async () => {
    for (let i = 0; i < POOL; i++) {
      const view = await createImage(deps, { name: `pool ${i}`, description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 5 }, actor);
      await makeFile(view.id);
      pool.push(view.id);
    }
    for (const vmId of vmIds) await setRunning(vmId, true);
  })();
  await s.waitFor(setup);

  const run = async (op: Op): Promise<unknown> => {
    switch (op.kind) {
      case 'create': {
        const view = await createImage(deps, { name: 'new', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: op.sizeMb }, actor);
        return makeFile(view.id);
      }
      case 'resize':
        return resize(deps, pool[op.image]!, op.sizeMb, actor);
      case 'attach':
        return attachImage(deps, pool[op.image]!, vmIds[op.vm]!, actor);
      case 'detach':
        return detachImage(deps, pool[op.image]!, undefined, actor);
      case 'forceDetach':
        return forceDetachImage(deps, pool[op.image]!, undefined, { kind: 'admin', userId: 1 });
      case 'revoke':
        return revokeImage(deps, pool[op.image]!, actor);
      case 'edit':
        return editImage(deps, pool[op.image]!, { diskController: op.diskController }, actor);
      case 'stop':
        return setRunning(vmIds[op.vm]!, false);
      case 'start':
        return setRunning(vmIds[op.vm]!, true);
    }
  };
  const results = await s.waitFor(Promise.allSettled(ops.map((op) => run(op))));
  for (const r of results) {
    // Refusals are answers; anything else (a 500) is a finding.
    if (r.status === 'rejected' && !(r.reason instanceof DomainError)) throw r.reason;
  }
  // Host agreement is checked after one reconciler pass. Two orders need it, by design: a
  // forced detach (for a dead host) leaves the disk on a live one; and a VM stopped and
  // started between an attach's intent and its virsh, whose stop event is delivered after
  // the attach's outcome, has the disk in its new run while the stop detaches it in the
  // records (found by this explorer, seed 29159 path 64). The reconciler unplugs both.
  await s.waitFor(reconcile(deps, { settleMs: 0, vmIds }));
  // Reactions the model leaves to no one: a revoked image's file (the disk-file reaction's job).
  for (const imageId of pool) if ((await stateOf(deps, imageId)).status === 'locked') host.files.delete(imageId);
  await checkInvariants(deps, host, userId, vmIds, domainOf);
};

const stateOf = async (deps: ServiceDeps, imageId: number) => (await deps.events.load(streamIdOf(imageId))).state;
const sizeOf = async (deps: ServiceDeps, imageId: number) => {
  const state = await stateOf(deps, imageId);
  return state.status === 'none' ? undefined : state.image.sizeMb;
};

/** What must hold after every run, whatever the order (SPEC 3). */
const checkInvariants = async (deps: ServiceDeps, host: HostModel, userId: number, vmIds: number[], domainOf: (vmId: number) => string) => {
  const images = (await deps.readModel.listByOwner(userId, { limit: 100, includeRevoked: true })).items;
  let counted = 0;
  const attachedOn = new Map<number, Map<string, string>>(); // vmId -> dev -> file
  for (const view of images) {
    const loaded = await deps.events.load(streamIdOf(view.id));
    const { state } = loaded;
    if (state.status === 'none') throw new Error(`image ${view.id} listed but has no stream`);
    // Histories without gaps: versions 1..n, and the head at n.
    const { events } = await deps.events.readStream(streamIdOf(view.id));
    events.forEach((e, i) => expectThat(e.version === i + 1, `image ${view.id}: event ${i + 1} has version ${e.version}`));
    expectThat(events.length === loaded.version, `image ${view.id}: head at ${loaded.version}, ${events.length} events`);
    // No Attached without the hypervisor's attach.
    const file = deps.storage.pathOf({ userId, imageId: view.id, storage: 'default' });
    for (const e of events) {
      if (e.type === 'StorageImageAttached' && e.data.mode === 'hot') {
        expectThat(host.everAttached.has(`${domainOf(e.data.vmId)}/${e.data.diskDev}/${file}`), `image ${view.id}: Attached on ${e.data.diskDev} never attached on the host`);
      }
    }
    expectThat(!(state.status === 'ok' && state.operation), `image ${view.id}: an operation is left open after every call returned`);
    if (state.status !== 'locked') {
      counted += state.image.sizeMb;
      // Every disk file's size is its counted size.
      if (state.status === 'ok') expectThat(host.files.get(view.id) === state.image.sizeMb, `image ${view.id}: file ${host.files.get(view.id)} MB, counted ${state.image.sizeMb} MB`);
    }
    if (state.status === 'ok' && state.attachment) {
      expectThat(state.attachment.phase === 'attached', `image ${view.id}: an attach is left in progress`);
      const on = attachedOn.get(state.attachment.vmId) ?? attachedOn.set(state.attachment.vmId, new Map()).get(state.attachment.vmId)!;
      expectThat(!on.has(state.attachment.diskDev), `VM ${state.attachment.vmId}: ${state.attachment.diskDev} held by two images`);
      on.set(state.attachment.diskDev, file);
      const vm = await deps.vms.get(state.attachment.vmId);
      expectThat(vm?.devices[state.attachment.diskDev]?.attachId === state.attachment.attachId, `image ${view.id}: its device claim is not its attach's`);
    }
  }
  // The quota ledger is the sum of the live images.
  expectThat((await deps.quota.usedMb(userId)) === counted, `quota ${await deps.quota.usedMb(userId)} MB, live images ${counted} MB`);
  // The records agree with the host: each running VM's disks are its attached images, and every claim is explained.
  for (const vmId of vmIds) {
    const vm = await deps.vms.get(vmId);
    const claims = Object.entries(vm?.devices ?? {});
    const recorded = attachedOn.get(vmId) ?? new Map();
    expectThat(claims.length === recorded.size, `VM ${vmId}: ${claims.length} claims, ${recorded.size} attached images`);
    if (vm?.state === 'running') {
      const onHost = host.disks.get(domainOf(vmId)) ?? new Map();
      expectThat(JSON.stringify([...onHost].sort()) === JSON.stringify([...recorded].sort()), `VM ${vmId}: host ${JSON.stringify([...onHost])}, records ${JSON.stringify([...recorded])}`);
    }
  }
};

const expectThat = (ok: boolean, what: string): void => {
  if (!ok) throw new Error(`invariant broken: ${what}`);
};

/** The explorer's settings: bounded in CI, more with `npm run test:explore`. */
export const explorerSettings = (): { numRuns: number; seed: number; path?: string } => {
  // CI replays a fixed seed; `npm run test:explore` asks for a fresh one (printed, so any failure replays).
  const asked = process.env.EXPLORE_SEED;
  const seed = asked === 'fresh' ? Date.now() % 0x7fffffff : asked ? Number(asked) : 0x5a6a;
  return { numRuns: Number(process.env.EXPLORE_RUNS ?? 20), seed, ...(process.env.EXPLORE_PATH ? { path: process.env.EXPLORE_PATH } : {}) };
};
