/**
 * The reconciler: compares the records (device claims, attachments) with what the
 * hypervisors report (`virsh domblklist` through SSM) and repairs every state a
 * crash between two writes can leave (docs/event-store.md, crash points). It never
 * guesses: a repair either records what the host shows, or makes the host match a
 * record that cannot be completed. Work younger than `settleMs` is left alone: it
 * may still be in flight.
 *
 * Across runs: hosts are taken in host id order, and a run over the whole directory
 * keeps a cursor (the last host up to which every host was checked) so a run cut short
 * (the Lambda timeout comes, or the remaining time ran short and no new host was
 * started) is followed by one that resumes after it and wraps around to the top. A run
 * that reaches every host clears it. The cursor moves as hosts finish, not only at the
 * end, so even a run killed mid-way leaves its progress behind.
 */
import { isStorageDevice } from '../domain/devices';
import { streamIdOf, type CommandContext } from '../domain/storageImage';
import { handleCommand } from './commandHandling';
import { detachInRecords } from './detach';
import { failAttach, imageIdOfSource } from './hotAttach';
import { HostCommandError, type AttachedDisk } from './ports';
import type { ServiceDeps } from './service';
import { FOREIGN_DISK, type ReconcilerCheckpoint, type ReconcilerCursor, type VmRecord } from './storePorts';
import { detachAllInRecords, shouldDetachAll } from './vmStops';
import { makeDiskFile, removeDiskFile } from './diskFiles';
import { finishResize } from './resize';
import { openInSlot } from './saga';
import { DomainError } from '../domain/errors';

export type RepairKind =
  | 'attach-completed' // AttachRequested + disk on host -> Attached
  | 'attach-failed' // AttachRequested, no disk on host (or VM gone) -> AttachFailed, claim freed
  | 'attached-without-disk' // Attached, host has no such disk -> Detached, claim freed
  | 'stale-claim' // a claim no event explains (only data older than attach ids): reported, left alone
  | 'disk-without-record' // a storage disk on the host nobody attached -> virsh detach
  | 'auto-detach-finished' // a stopped VM whose images were not all detached (a crash mid-way) -> detached
  | 'foreign-disk-claimed' // a disk this service did not attach holds a storage device name -> claimed for it
  | 'foreign-disk-gone' // that disk left the host -> its claim freed
  | 'resize-completed' // ResizeRequested left open -> grown again (idempotent), Resized
  | 'resize-failed' // ...and the host refused -> ResizeFailed, the quota given back
  | 'disk-file-finished' // Created / DiskRetried left open -> the file made again, DiskReady (or DiskFailed)
  | 'disk-file-removed'; // Revoked left open -> the file removed (idempotent), DiskFileRemoved

export interface Repair {
  kind: RepairKind;
  /** The VM and device of a repair about an attachment (absent for an image's own operations). */
  vmId?: number;
  diskDev?: string;
  imageId?: number;
}

export interface ReconcileReport {
  vmsChecked: number;
  /** VMs whose host could not be asked (or stopped answering): left for the next run. */
  hostsUnreachable: number[];
  /** Hosts skipped after one timeout or refusal to answer: their other VMs wait for the next run. */
  hostsSkipped: string[];
  repairs: Repair[];
  /** The host after which this run started (the previous run's cursor); absent: from the top. */
  resumedAfter?: string;
  /** Hosts not started because the remaining time ran short (absent: none): the next run starts with them. */
  hostsNotStarted?: number;
  /** The cursor this run left: the last host it checked when it did not reach them all; absent when it did (cleared). */
  cursor?: string;
  /** Open operations whose host did not answer: left for the next run. */
  operationsUnfinished?: number[];
}

export interface ReconcileOptions {
  /** Claims and attaches younger than this are in flight, not stale. Default 2 min. */
  settleMs?: number;
  /** Only these VMs (default: every VM in the directory). */
  vmIds?: number[];
  /** Hosts checked at once (default 8); a host's VMs are checked one after the other. */
  hostConcurrency?: number;
  /** Where whole-directory runs resume (not used with `vmIds`). Without one, every run starts from the top. */
  cursor?: ReconcilerCursor;
  /** Time left before the run is cut off (Lambda's context.getRemainingTimeInMillis). */
  remainingTimeMs?: () => number;
  /** No new host is started with less time left than this (default 60 s): a host's VMs take up to one SSM timeout each. */
  reserveMs?: number;
}

/** The hosts in the order of this run: after `afterHost` (in id order), then from the top up to it. */
export const hostOrder = <T>(hosts: Array<[string, T]>, afterHost: string | undefined): Array<[string, T]> => {
  const sorted = [...hosts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (afterHost === undefined) return sorted;
  const start = sorted.findIndex(([id]) => id > afterHost);
  return start < 0 ? sorted : [...sorted.slice(start), ...sorted.slice(0, start)];
};

const system = (deps: ServiceDeps): CommandContext => ({
  actor: { kind: 'system', reason: 'reconciled' },
  now: (deps.clock ?? (() => new Date().toISOString()))(),
});

export const reconcile = async (deps: ServiceDeps, options: ReconcileOptions = {}): Promise<ReconcileReport> => {
  const settleMs = options.settleMs ?? 120_000;
  const nowMs = Date.parse(system(deps).now);
  const settled = (since: string) => nowMs - Date.parse(since) >= settleMs;
  const report: ReconcileReport = { vmsChecked: 0, hostsUnreachable: [], hostsSkipped: [], repairs: [] };
  const repaired = (repair: Repair) => {
    report.repairs.push(repair);
    deps.logger.warn('reconciler repair', { ...repair });
    deps.metrics?.count('ReconcilerRepair', { kind: repair.kind });
  };

  const vms = options.vmIds
    ? ((await Promise.all(options.vmIds.map((id) => deps.vms.get(id)))).filter(Boolean) as VmRecord[])
    : await deps.vms.list();

  // One queue per host, hosts in parallel: a host that does not answer costs one timeout,
  // then its other VMs wait for the next run, and every other host is still checked.
  const byHost = new Map<string, VmRecord[]>();
  for (const vm of vms) byHost.set(vm.hostId ?? '', [...(byHost.get(vm.hostId ?? '') ?? []), vm]);
  const cursor = options.vmIds ? undefined : options.cursor;
  const checkpoint = cursor ? await cursor.read() : undefined;
  if (checkpoint?.afterHost !== undefined) report.resumedAfter = checkpoint.afterHost;
  const hosts = hostOrder([...byHost], checkpoint?.afterHost);
  const progress = cursor && checkpoint ? cursorProgress(deps, cursor, checkpoint, hosts.map(([id]) => id)) : undefined;

  const checkHost = async ([hostId, hostVms]: [string, VmRecord[]]) => {
    for (const [i, vm] of hostVms.entries()) {
      report.vmsChecked++;
      try {
        await reconcileVm(deps, vm, settled, repaired);
      } catch (error) {
        if (!(error instanceof HostCommandError)) throw error;
        deps.logger.warn('reconciler: host did not answer; its VMs are left for the next run', { hostId, vmId: vm.vmId, kind: error.kind, error: error.message });
        report.hostsUnreachable.push(...hostVms.slice(i).map((v) => v.vmId));
        if (hostId) report.hostsSkipped.push(hostId);
        return;
      }
    }
  };
  const reserveMs = options.reserveMs ?? 60_000;
  const timeShort = () => options.remainingTimeMs !== undefined && options.remainingTimeMs() < reserveMs;
  let next = 0;
  const worker = async () => {
    while (next < hosts.length && !timeShort()) {
      const i = next++;
      await checkHost(hosts[i]!);
      await progress?.done(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.hostConcurrency ?? 8, hosts.length) }, worker));
  const notStarted = hosts.length - next;
  if (notStarted > 0) {
    report.hostsNotStarted = notStarted;
    deps.logger.warn('reconciler: time ran short; the next run resumes where this one stopped', { hostsNotStarted: notStarted });
  }
  if (!options.vmIds && !timeShort()) await reconcileOpenOperations(deps, settled, repaired, report);
  const left = await progress?.finish(notStarted === 0);
  if (left !== undefined) report.cursor = left;
  report.hostsUnreachable.sort((a, b) => a - b);
  return report;
};

/**
 * The cursor of one run: hosts finish out of order (several at once), so it moves to the
 * last host of the longest run of finished hosts from the start of this run's order. Writes
 * go one at a time, each guarded by the version the last one left; once another run has
 * moved the cursor, this one stops writing it (that run's progress stands). A worker
 * waits for the write its host caused before it starts the next host (milliseconds, next
 * to a host's SSM round trips), so what a killed run reports done is on the table.
 */
const cursorProgress = (deps: ServiceDeps, cursor: ReconcilerCursor, read: ReconcilerCheckpoint, order: string[]) => {
  let version: number | false = read.version;
  let finished = 0; // order[0..finished) are done
  const done = new Set<number>();
  let writes = Promise.resolve();
  const save = (afterHost: string | undefined) => {
    writes = writes.then(async () => {
      if (version === false) return;
      version = await cursor.write(afterHost, version);
      if (version === false) deps.logger.warn('reconciler: another run moved the cursor; this run leaves it to that one');
    });
  };
  return {
    /** Host `i` of the order is done; resolves when the cursor write it caused (if any) is made. */
    done(i: number): Promise<void> {
      done.add(i);
      const before = finished;
      while (done.has(finished)) finished++;
      if (finished > before && finished < order.length) save(order[finished - 1]);
      return writes;
    },
    /** Waits for the writes; clears the cursor when every host was reached. Returns the cursor left. */
    async finish(reachedAll: boolean): Promise<string | undefined> {
      // Nothing to clear when the cursor was neither found set nor moved by this run.
      if (reachedAll && (read.afterHost !== undefined || version !== read.version)) save(undefined);
      await writes;
      if (reachedAll || version === false) return undefined;
      return finished > 0 ? order[finished - 1] : read.afterHost;
    },
  };
};

/**
 * Every host operation left open (saga.ts: an intent committed, its outcome not), older
 * than the settle time, finished forward with the workflow's own functions: every one of
 * their host calls is idempotent.
 */
const reconcileOpenOperations = async (
  deps: ServiceDeps,
  settled: (since: string) => boolean,
  repaired: (repair: Repair) => void,
  report: ReconcileReport,
): Promise<void> => {
  for (const op of await deps.events.openOperations()) {
    if (!settled(op.since)) continue;
    const { imageId } = op;
    try {
      const loaded = await deps.events.load(streamIdOf(imageId));
      if (openInSlot(loaded.state, op.slot, imageId)?.opId !== (op.slot === 'removeFile' ? 'revoke' : op.opId)) continue; // ended since it was listed
      if (op.slot === 'resize') {
        try {
          await finishResize(deps, imageId, loaded, { kind: 'system', reason: 'reconciled' });
          repaired({ kind: 'resize-completed', imageId });
        } catch (error) {
          const after = await deps.events.load(streamIdOf(imageId));
          if (!openInSlot(after.state, 'resize', imageId)) repaired({ kind: 'resize-failed', imageId });
          else throw error;
        }
      } else if (op.slot === 'file') {
        await makeDiskFile(deps, imageId, op.opId);
        repaired({ kind: 'disk-file-finished', imageId });
      } else {
        await removeDiskFile(deps, imageId);
        repaired({ kind: 'disk-file-removed', imageId });
      }
    } catch (error) {
      if (!(error instanceof HostCommandError) && !(error instanceof DomainError)) throw error;
      deps.logger.warn('reconciler: an open operation could not be finished; left for the next run', { imageId, slot: op.slot, error: String(error) });
      (report.operationsUnfinished ??= []).push(imageId);
    }
  }
};

/** One VM: its claims against its images' records, and against the host's disks when it runs. Throws HostCommandError when the host does not answer. */
const reconcileVm = async (deps: ServiceDeps, vm: VmRecord, settled: (since: string) => boolean, repaired: (repair: Repair) => void): Promise<void> => {
  if (shouldDetachAll(vm) && Object.values(vm.devices).some((c) => c.imageId !== FOREIGN_DISK)) {
    for (const imageId of await detachAllInRecords(deps, vm)) {
      const dev = Object.entries(vm.devices).find(([, c]) => c.imageId === imageId)?.[0] ?? '';
      repaired({ kind: 'auto-detach-finished', vmId: vm.vmId, diskDev: dev, imageId });
    }
    return;
  }
  // What the host has, when the VM runs; undefined when it does not run (or is gone).
  let onHost: AttachedDisk[] | undefined;
  if (vm.state === 'running' && vm.hostId && vm.domain) {
    try {
      onHost = await deps.hypervisor.listDisks({ hostId: vm.hostId, domain: vm.domain });
    } catch (error) {
      if (!(error instanceof HostCommandError && error.kind === 'unknown_domain')) throw error;
    }
  }
  const hostDisk = (dev: string) => onHost?.find((d) => d.dev === dev);

  for (const [diskDev, claim] of Object.entries(vm.devices)) {
    const { imageId } = claim;
    if (imageId === FOREIGN_DISK) {
      if (onHost && !hostDisk(diskDev)) {
        await deps.vms.releaseForeignDisk(vm.vmId, diskDev);
        repaired({ kind: 'foreign-disk-gone', vmId: vm.vmId, diskDev });
      }
      continue;
    }
    const loaded = await deps.events.load(streamIdOf(imageId));
    const { state } = loaded;
    const attachment = state.status === 'ok' ? state.attachment : null;
    const here = attachment && attachment.attachId === claim.attachId ? attachment : null;
    const file = state.status === 'none' ? undefined : deps.storage.pathOf({ userId: state.image.userId, imageId, storage: state.image.storage });
    const diskIsOurs = file !== undefined && hostDisk(diskDev)?.source === file;

    if (here?.phase === 'attaching') {
      if (!settled(here.since)) continue;
      if (diskIsOurs) {
        await handleCommand(deps, imageId, { type: 'ConfirmAttach', attachId: here.attachId }, system(deps), { loaded });
        repaired({ kind: 'attach-completed', vmId: vm.vmId, diskDev, imageId });
      } else {
        await failAttach(deps, imageId, here.attachId, 'reconciled: not on the host');
        repaired({ kind: 'attach-failed', vmId: vm.vmId, diskDev, imageId });
      }
    } else if (here?.phase === 'attached') {
      // Only a running VM can be checked: boot-time disks of a VM not started yet are fine.
      if (onHost && !diskIsOurs && settled(here.since)) {
        // Pinned to the attach the claim names: a newer attachment of the image is not this one.
        await detachInRecords(deps, imageId, { type: 'Detach', attachId: here.attachId }, system(deps), loaded);
        repaired({ kind: 'attached-without-disk', vmId: vm.vmId, diskDev, imageId });
      }
    } else if (settled(claim.since)) {
      repaired({ kind: 'stale-claim', vmId: vm.vmId, diskDev, imageId });
    }
  }

  // Storage disks on the host that no claim covers. Every attach claims its device (with
  // its intent event) before virsh runs, so a fresh read of the claims tells in-flight work apart.
  const unclaimed = (onHost ?? []).filter((d) => !vm.devices[d.dev] && isStorageDevice(d.dev));
  const fresh = unclaimed.length ? await deps.vms.get(vm.vmId) : undefined;
  for (const disk of unclaimed) {
    if (fresh?.devices[disk.dev]) continue;
    const imageId = imageIdOfSource(deps, disk.source);
    if (imageId === undefined) {
      // An operator's disk on a device name attaches would pick: hold it for that disk.
      if (await deps.vms.claimForeignDisk(vm.vmId, vm.userId, disk.dev, system(deps).now)) repaired({ kind: 'foreign-disk-claimed', vmId: vm.vmId, diskDev: disk.dev });
      continue;
    }
    await deps.hypervisor.detachDisk({ hostId: vm.hostId!, domain: vm.domain!, dev: disk.dev });
    repaired({ kind: 'disk-without-record', vmId: vm.vmId, diskDev: disk.dev, imageId });
  }
};
