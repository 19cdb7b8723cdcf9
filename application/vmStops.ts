/**
 * VM state events: the VM directory follows them (ordered by the hosts' times in the
 * write's condition), and on a stop every image of the VM is detached in the records
 * only (the domain is gone; no virsh call), each with its device claim released in the
 * same step. `migrated` and `saved` stops keep the disks.
 */
import { contextOf, type ServiceDeps } from './service';
import { detachInRecords } from './detach';
import { FOREIGN_DISK, type VmRecord, type VmStateChange } from './storePorts';

/** Stops after which the VM lives on (elsewhere, or later from its saved state). */
export const KEEPS_DISKS = new Set(['migrated', 'saved']);

/** A stop whose disks should be detached, as the VM's record says (also the reconciler's test). */
export const shouldDetachAll = (vm: VmRecord): boolean => vm.state === 'stopped' && !KEEPS_DISKS.has(vm.stopReason ?? 'stopped');

export const onVmStateChange = async (deps: ServiceDeps, change: VmStateChange): Promise<{ applied: boolean; detached: number[] }> => {
  const { applied, record } = await deps.vms.recordState(change);
  // A redelivered stop (same time) finishes what a first delivery left undone.
  const current = applied || (record.stateTime === change.time && record.state === change.state);
  if (!current || !shouldDetachAll(record)) return { applied, detached: [] };
  const detached = await detachAllInRecords(deps, record);
  if (detached.length) deps.metrics?.count('AutoDetached');
  return { applied, detached };
};

/** Every image the stopped VM's claims name, detached in the records. Returns the images detached now. */
export const detachAllInRecords = async (deps: ServiceDeps, vm: VmRecord): Promise<number[]> => {
  const ctx = contextOf(deps, { kind: 'system', reason: 'vm-stopped' });
  const detached: number[] = [];
  for (const claim of Object.values(vm.devices)) {
    if (claim.imageId === FOREIGN_DISK) continue;
    // A claim made after this stop was recorded (a boot attach of the VM made again) is newer than it: kept.
    if (claim.vmTime !== undefined && vm.stateTime !== undefined && claim.vmTime >= vm.stateTime) continue;
    const result = await detachInRecords(deps, claim.imageId, { type: 'DetachStoppedVm', vmId: vm.vmId }, ctx);
    if (result.appended) detached.push(claim.imageId);
  }
  // Disks this service did not attach went with the domain: their claims too.
  for (const [dev, claim] of Object.entries(vm.devices)) if (claim.imageId === FOREIGN_DISK) await deps.vms.releaseForeignDisk(vm.vmId, dev);
  return detached;
};
