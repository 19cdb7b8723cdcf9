/**
 * Hot attach to a running VM, a host operation (saga.ts, HOST_OPERATIONS.attach;
 * docs/event-store.md):
 * 1. intent: AttachRequested (the decider picks the VM's first free device) and the
 *    device claim naming this attach, in one transaction that also requires the VM
 *    recorded running; another attach holding the device or the image cancels it whole;
 * 2. virsh attach-disk (confirmed by domblklist);
 * 3. outcome, pinned to the attach id: Attached; or, when virsh failed or did not
 *    answer, AttachFailed and the claim released in one transaction. When Attached is
 *    refused (a forced detach or the VM's stop ended the attach meanwhile), the disk is
 *    unplugged again before the caller hears the refusal.
 * A crash between 1 and 3 is the reconciler's (it reads the claim and domblklist).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fail } from '../domain/errors';
import { checkImageAccess } from '../domain/policies';
import { streamIdOf, type Actor, type VmView } from '../domain/storageImage';
import { attachIdAt, conflictBackoffMs, eventOf, handleCommand } from './commandHandling';
import { hostError } from './hostErrors';
import { HostCommandError } from './ports';
import { finishOperation } from './saga';
import { contextOf, now, viewOf, type ServiceDeps } from './service';
import { ConcurrencyError, DeviceClaimError, type ImageView, type VmRecord } from './storePorts';

export const vmViewOf = (vm: VmRecord | undefined): VmView | undefined =>
  vm && vm.state ? { vmId: vm.vmId, userId: vm.userId, running: vm.state === 'running' } : undefined;

/** Tries of the intent after a lost race (the image or the VM's devices changed): each reads both again. */
const INTENT_TRIES = 12;

export const attachImage = async (deps: ServiceDeps, imageId: number, vmId: number, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  let foreignSkipped = false;
  for (let attempt = 1; attempt <= INTENT_TRIES; attempt++) {
    const [loaded, vm] = await Promise.all([deps.events.load(streamIdOf(imageId)), deps.vms.get(vmId)]);
    if (loaded.state.status === 'none') return fail('image_get', 'No such storage image.');
    // As CC1 (VM.get(caller_id, vm_id) before the image): a VM that is not the caller's is vm_get.
    if (vm && (actor.kind === 'user' || actor.kind === 'portal') && vm.userId !== actor.userId) fail('vm_get', `No such VM ${vmId}.`);
    checkImageAccess(loaded.state.image.userId, actor);
    if (vm?.state === 'running' && (!vm.hostId || !vm.domain)) return fail('vm_get', 'The VM has no known host.');
    const attachId = attachIdAt(imageId, loaded);

    let requested;
    try {
      requested = await handleCommand(
        deps,
        imageId,
        { type: 'RequestHotAttach', vm: vmViewOf(vm), devicesTaken: Object.keys(vm?.devices ?? {}), maxDisks: deps.config.maxDisksPerVm, attachId },
        ctx,
        {
          loaded,
          retries: 0, // a lost race reads the VM again too: its devices decide the device
          effects: ({ event, after }) => {
            const { diskDev } = eventOf(event, 'StorageImageAttachRequested').data;
            const userId = after.status === 'none' ? 0 : after.image.userId;
            const vmTime = vm?.stateTime === undefined ? {} : { vmTime: vm.stateTime };
            return { claims: [{ vmId, userId, dev: diskDev, imageId, attachId, maxDevices: deps.config.maxDisksPerVm, vmState: 'running', ...vmTime }] };
          },
        },
      );
    } catch (error) {
      if (error instanceof DeviceClaimError) {
        if (error.reason === 'other_owner') fail('vm_get', `VM ${vmId} belongs to another user.`);
        if (error.reason === 'full') fail('storage_image_attach', `The VM already has ${deps.config.maxDisksPerVm} storage disks.`);
        if (error.reason === 'vm_state') fail('storage_image_attach', `VM ${vmId} is not running (it stopped meanwhile).`);
      } else if (!(error instanceof ConcurrencyError)) throw error;
      await sleep(conflictBackoffMs(attempt)); // another attach took that device, or the image changed: read both again
      continue;
    }
    // A retry of an attach in progress (same image, this VM) finds nothing to decide: carry on with its attach.
    const held = requested.state.status === 'ok' ? requested.state.attachment : null;
    if (!held || held.phase !== 'attaching' || held.vmId !== vmId) return viewOf(requested.state, requested.version);
    const { diskDev } = held;
    const where = { hostId: vm!.hostId!, domain: vm!.domain!, dev: diskDev };
    const state = requested.state as Extract<typeof requested.state, { status: 'ok' }>;
    const file = deps.storage.pathOf({ userId: state.image.userId, imageId, storage: state.image.storage });

    let hostFailure: unknown;
    try {
      const result = await finishOperation({
        host: () => deps.hypervisor.attachDisk({ ...where, file, bus: state.image.diskController }),
        outcome: () => handleCommand(deps, imageId, { type: 'ConfirmAttach', attachId: held.attachId }, ctx, { loaded: requested }),
        failed: async (error) => {
          hostFailure = error;
          await abandonAttach(deps, imageId, held.attachId, where, error);
          throw error;
        },
        // Attached was refused (the attach was ended meanwhile): the disk must not stay on the domain.
        undo: () => deps.hypervisor.detachDisk(where),
        onUndoFailed: (error) => deps.logger.error('attach refused and the disk could not be unplugged: left to the reconciler', { imageId, ...where, error: String(error) }),
      });
      deps.metrics?.count('AttachSucceeded', { mode: 'hot' });
      return viewOf(result.state, result.version);
    } catch (error) {
      if (hostFailure === undefined) throw error;
      // A disk this service did not attach may sit on that device: hold it for that disk, take the next.
      if (!foreignSkipped && error instanceof HostCommandError && error.kind === 'failed' && (await heldByForeignDisk(deps, vm!, diskDev))) {
        foreignSkipped = true;
        continue;
      }
      throw hostError(error, 'storage_image_attach');
    }
  }
  return fail('storage_image_attach', 'Too many concurrent attaches to this VM; try again.');
};

/** virsh failed or did not answer: AttachFailed and the device freed, in one step. */
const abandonAttach = async (
  deps: ServiceDeps,
  imageId: number,
  attachId: string,
  where: { hostId: string; domain: string; dev: string },
  error: unknown,
): Promise<void> => {
  const kind = error instanceof HostCommandError ? error.kind : 'failed';
  deps.logger.warn('hypervisor attach failed', { imageId, ...where, kind, detail: (error as HostCommandError).detail, error: String(error) });
  deps.metrics?.count('AttachFailed', { kind });
  if (kind === 'timeout') {
    // The command may still complete on the host: undo it, or leave it to the reconciler.
    await deps.hypervisor.detachDisk(where).catch(() => undefined);
  }
  await failAttach(deps, imageId, attachId, `hypervisor: ${kind}`);
};

/** Ends an attach that did not happen: AttachFailed with its claim released (also used by the reconciler). */
export const failAttach = (deps: ServiceDeps, imageId: number, attachId: string, reason: string) =>
  handleCommand(deps, imageId, { type: 'FailAttach', attachId, reason }, contextOf(deps, { kind: 'system', reason: 'reconciled' }), {
    effects: ({ event }) => {
      const { vmId, diskDev } = eventOf(event, 'StorageImageAttachFailed').data;
      return { releases: [{ vmId, dev: diskDev, attachId }] };
    },
  });

/**
 * Whether the host shows, on `dev`, a disk that is not one of this service's images;
 * if so, that device is claimed for it (FOREIGN_DISK) so no attach picks it again.
 */
const heldByForeignDisk = async (deps: ServiceDeps, vm: VmRecord, dev: string): Promise<boolean> => {
  const disks = await deps.hypervisor.listDisks({ hostId: vm.hostId!, domain: vm.domain! }).catch(() => []);
  const disk = disks.find((d) => d.dev === dev);
  if (!disk || imageIdOfSource(deps, disk.source) !== undefined) return false;
  deps.logger.warn('a disk this service did not attach holds a device: claimed for it', { vmId: vm.vmId, dev, source: disk.source });
  return deps.vms.claimForeignDisk(vm.vmId, vm.userId, dev, now(deps));
};

/** `<a storage's path>/<user id>/<image id>` -> the image id, for disk files this service made (on any storage). */
export const imageIdOfSource = (deps: Pick<ServiceDeps, 'storage'>, source: string): number | undefined => {
  const m = /\/([0-9]+)\/([0-9]+)$/.exec(source);
  if (!m) return undefined;
  const [userId, imageId] = [Number(m[1]), Number(m[2])];
  return deps.storage.storageIds.some((storage) => deps.storage.pathOf({ userId, imageId, storage }) === source) ? imageId : undefined;
};
