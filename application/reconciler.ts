/**
 * The reconciler: compares the records (device claims, attachments) with what the
 * hypervisors report (`virsh domblklist` through SSM) and repairs every state a
 * crash between two writes can leave (docs/event-store.md, crash points). It never
 * guesses: a repair either records what the host shows, or makes the host match a
 * record that cannot be completed. Work younger than `settleMs` is left alone: it
 * may still be in flight.
 */
import { streamIdOf, type CommandContext } from '../domain/storageImage';
import { handleCommand } from './commandHandling';
import { HostCommandError, type AttachedDisk } from './ports';
import { imageIdOfSource, type ServiceDeps } from './storageImages';
import { FOREIGN_DISK, type VmRecord } from './storePorts';
import { isStorageDevice } from '../domain/devices';

export type RepairKind =
  | 'attach-completed' // AttachRequested + disk on host -> Attached
  | 'attach-failed' // AttachRequested, no disk on host (or VM gone) -> AttachFailed, claim freed
  | 'attached-without-disk' // Attached, host has no such disk -> Detached, claim freed
  | 'stale-claim' // a claim no event explains -> freed
  | 'disk-without-record' // a storage disk on the host nobody attached -> virsh detach
  | 'claim-restored' // Attached, disk on host, claim lost -> claimed again
  | 'foreign-disk-claimed' // a disk this service did not attach holds a storage device name -> claimed for it
  | 'foreign-disk-gone'; // that disk left the host -> its claim freed

export interface Repair {
  kind: RepairKind;
  vmId: number;
  diskDev: string;
  imageId?: number;
}

export interface ReconcileReport {
  vmsChecked: number;
  hostsUnreachable: number[];
  repairs: Repair[];
}

export interface ReconcileOptions {
  /** Claims and attaches younger than this are in flight, not stale. Default 2 min. */
  settleMs?: number;
  /** Only these VMs (default: every VM in the directory). */
  vmIds?: number[];
}

const system = (deps: ServiceDeps): CommandContext => ({
  actor: { kind: 'system', reason: 'reconciled' },
  now: (deps.clock ?? (() => new Date().toISOString()))(),
});

export const reconcile = async (deps: ServiceDeps, options: ReconcileOptions = {}): Promise<ReconcileReport> => {
  const settleMs = options.settleMs ?? 120_000;
  const nowMs = Date.parse(system(deps).now);
  const settled = (since: string) => nowMs - Date.parse(since) >= settleMs;
  const report: ReconcileReport = { vmsChecked: 0, hostsUnreachable: [], repairs: [] };
  const repaired = (repair: Repair) => {
    report.repairs.push(repair);
    deps.logger.warn('reconciler repair', { ...repair });
    deps.metrics?.count('ReconcilerRepair', { kind: repair.kind });
  };

  const vms = options.vmIds
    ? ((await Promise.all(options.vmIds.map((id) => deps.vms.get(id)))).filter(Boolean) as VmRecord[])
    : await deps.vms.list();

  for (const vm of vms) {
    report.vmsChecked++;
    try {
      // What the host has, when the VM runs; undefined when it does not run (or is gone).
      let onHost: AttachedDisk[] | undefined;
      if (vm.state === 'running' && vm.hostId && vm.domain) {
        try {
          onHost = await deps.hypervisor.listDisks({ hostId: vm.hostId, domain: vm.domain });
        } catch (error) {
          if (!(error instanceof HostCommandError && error.kind === 'unknown_domain')) {
            report.hostsUnreachable.push(vm.vmId);
            continue; // cannot tell: try again next run
          }
        }
      }
      const hostDisk = (dev: string) => onHost?.find((d) => d.dev === dev);

      for (const [diskDev, claim] of Object.entries(vm.devices)) {
        const { imageId } = claim;
        if (imageId === FOREIGN_DISK) {
          if (onHost && !hostDisk(diskDev)) {
            await deps.vms.releaseDevice(vm.vmId, diskDev, FOREIGN_DISK);
            repaired({ kind: 'foreign-disk-gone', vmId: vm.vmId, diskDev });
          }
          continue;
        }
        const loaded = await deps.events.load(streamIdOf(imageId));
        const { state } = loaded;
        const attachment = state.status === 'ok' ? state.attachment : null;
        const here = attachment && attachment.vmId === vm.vmId && attachment.diskDev === diskDev ? attachment : null;
        const file = state.status === 'none' ? undefined : deps.storage.pathOf({ userId: state.image.userId, imageId, storage: state.image.storage });
        const diskIsOurs = file !== undefined && hostDisk(diskDev)?.source === file;

        if (here?.phase === 'attaching') {
          if (!settled(here.since)) continue;
          if (diskIsOurs) {
            await handleCommand(deps, imageId, { type: 'ConfirmAttach', vmId: vm.vmId, diskDev }, system(deps), { loaded });
            repaired({ kind: 'attach-completed', vmId: vm.vmId, diskDev, imageId });
          } else {
            await handleCommand(deps, imageId, { type: 'FailAttach', vmId: vm.vmId, diskDev, reason: 'reconciled: not on the host' }, system(deps), { loaded });
            await deps.vms.releaseDevice(vm.vmId, diskDev, imageId);
            repaired({ kind: 'attach-failed', vmId: vm.vmId, diskDev, imageId });
          }
        } else if (here?.phase === 'attached') {
          // Only a running VM can be checked: boot-time disks of a VM not started yet are fine.
          if (onHost && !diskIsOurs && settled(here.since)) {
            await handleCommand(deps, imageId, { type: 'Detach', vmId: vm.vmId }, system(deps), { loaded });
            await deps.vms.releaseDevice(vm.vmId, diskDev, imageId);
            repaired({ kind: 'attached-without-disk', vmId: vm.vmId, diskDev, imageId });
          }
        } else if (settled(claim.since)) {
          // No event explains this claim: a crash before AttachRequested, or after Detached.
          if (diskIsOurs) {
            await deps.hypervisor.detachDisk({ hostId: vm.hostId!, domain: vm.domain!, dev: diskDev });
            repaired({ kind: 'disk-without-record', vmId: vm.vmId, diskDev, imageId });
          }
          await deps.vms.releaseDevice(vm.vmId, diskDev, imageId);
          repaired({ kind: 'stale-claim', vmId: vm.vmId, diskDev, imageId });
        }
      }

      // Disks on the host that no claim covers. Every attach claims its device before
      // virsh runs, so a fresh read of the claims tells in-flight work apart.
      const unclaimed = (onHost ?? []).filter((d) => !vm.devices[d.dev] && isStorageDevice(d.dev));
      const fresh = unclaimed.length ? await deps.vms.get(vm.vmId) : undefined;
      for (const disk of unclaimed) {
        if (fresh?.devices[disk.dev]) continue;
        const imageId = imageIdOfSource(deps, disk.source);
        if (imageId === undefined) {
          // An operator's disk on a device name attaches would pick: hold it for that disk.
          const claimed = await deps.vms.claimDevice(vm.vmId, vm.userId, disk.dev, FOREIGN_DISK, Number.MAX_SAFE_INTEGER, system(deps).now);
          if (claimed.ok) repaired({ kind: 'foreign-disk-claimed', vmId: vm.vmId, diskDev: disk.dev });
          continue;
        }
        const loaded = await deps.events.load(streamIdOf(imageId));
        const attachment = loaded.state.status === 'ok' ? loaded.state.attachment : null;
        if (attachment?.phase === 'attached' && attachment.vmId === vm.vmId && attachment.diskDev === disk.dev) {
          const claimed = await deps.vms.claimDevice(vm.vmId, vm.userId, disk.dev, imageId, Number.MAX_SAFE_INTEGER, system(deps).now);
          if (claimed.ok) repaired({ kind: 'claim-restored', vmId: vm.vmId, diskDev: disk.dev, imageId });
          continue;
        }
        await deps.hypervisor.detachDisk({ hostId: vm.hostId!, domain: vm.domain!, dev: disk.dev });
        repaired({ kind: 'disk-without-record', vmId: vm.vmId, diskDev: disk.dev, imageId });
      }
    } catch (error) {
      // A host that stops answering mid-repair (a detach that times out, say) is
      // reported like one that cannot be asked, and the other VMs are still checked.
      if (!(error instanceof HostCommandError)) throw error;
      if (!report.hostsUnreachable.includes(vm.vmId)) report.hostsUnreachable.push(vm.vmId);
      deps.logger.warn('reconciler: host command failed; this VM is left for the next run', { vmId: vm.vmId, kind: error.kind, error: error.message });
    }
  }
  return report;
};
