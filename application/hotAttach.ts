/**
 * Hot attach to a running VM, in two command steps with virsh between them:
 * 1. intent: AttachRequested and the device claim (naming this attach) in one transaction;
 *    another attach holding the device, or the image, cancels it whole;
 * 2. virsh attach-disk (confirmed by domblklist);
 * 3. outcome: Attached; or, when virsh failed or did not answer, AttachFailed and the
 *    claim released in one transaction.
 * A crash between 1 and 3 is the one gap left: the reconciler finishes it from the
 * host's domblklist (docs/event-store.md, crash points).
 */
import { allocateDevice } from '../domain/devices';
import { fail } from '../domain/errors';
import { checkAttachable, checkHotPlug, checkImageAccess, checkVmOfOwner } from '../domain/policies';
import { streamIdOf, type Actor, type VmView } from '../domain/storageImage';
import { attachIdAt, handleCommand } from './commandHandling';
import { hostError } from './hostErrors';
import { HostCommandError } from './ports';
import { contextOf, now, viewOf, type ServiceDeps } from './service';
import { DeviceClaimError, type ImageView, type VmRecord } from './storePorts';

export const vmViewOf = (vm: VmRecord | undefined): VmView | undefined =>
  vm && vm.state ? { vmId: vm.vmId, userId: vm.userId, running: vm.state === 'running' } : undefined;

/** How many times a lost device race is tried again with the VM read anew. */
const DEVICE_ROUNDS = 20;

export const attachImage = async (deps: ServiceDeps, imageId: number, vmId: number, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  let foreignSkipped = false;
  for (let round = 0; round < DEVICE_ROUNDS; round++) {
    const [loaded, vm] = await Promise.all([deps.events.load(streamIdOf(imageId)), deps.vms.get(vmId)]);
    // The rules first (the same policies the decider applies), so nothing is claimed for a refused request.
    if (loaded.state.status === 'none') return fail('image_get', 'No such storage image.');
    // As CC1 (VM.get(caller_id, vm_id) before the image): a VM that is not the caller's is vm_get.
    if (vm && (actor.kind === 'user' || actor.kind === 'portal') && vm.userId !== actor.userId) fail('vm_get', `No such VM ${vmId}.`);
    checkImageAccess(loaded.state.image.userId, actor);
    const ready = checkAttachable(loaded.state, vmId);
    const vmView = checkVmOfOwner(vmViewOf(vm), vmId, ready.image.userId);
    checkHotPlug(ready, vmView);
    if (!vm?.hostId || !vm.domain) return fail('vm_get', 'The VM has no known host.');
    const { hostId, domain } = vm;
    const bus = ready.image.diskController;
    const diskDev = allocateDevice(bus, Object.keys(vm.devices), deps.config.maxDisksPerVm);
    const attachId = attachIdAt(imageId, loaded);

    let requested;
    try {
      requested = await handleCommand(deps, imageId, (fresh) => ({ type: 'RequestHotAttach', vm: vmView, diskDev, attachId: attachIdAt(imageId, fresh) }), ctx, {
        loaded,
        effects: ({ event }) => ({
          claims: [{ vmId, userId: ready.image.userId, dev: diskDev, imageId, attachId: (event.data as { attachId: string }).attachId, maxDevices: deps.config.maxDisksPerVm }],
        }),
      });
    } catch (error) {
      if (!(error instanceof DeviceClaimError)) throw error;
      if (error.reason === 'other_owner') fail('vm_get', `VM ${vmId} belongs to another user.`);
      if (error.reason === 'full') fail('storage_image_attach', `The VM already has ${deps.config.maxDisksPerVm} storage disks.`);
      continue; // another attach took that device first: read the VM again, take the next
    }
    const heldId = requested.state.status === 'ok' && requested.state.attachment ? requested.state.attachment.attachId : attachId;

    const file = deps.storage.pathOf({ userId: ready.image.userId, imageId, storage: ready.image.storage });
    try {
      await deps.hypervisor.attachDisk({ hostId, domain, file, dev: diskDev, bus });
    } catch (error) {
      await abandonAttach(deps, imageId, heldId, { hostId, domain, dev: diskDev }, error);
      // A disk this service did not attach may sit on that device: hold it for that disk, take the next.
      if (!foreignSkipped && error instanceof HostCommandError && error.kind === 'failed' && (await heldByForeignDisk(deps, vm, diskDev))) {
        foreignSkipped = true;
        continue;
      }
      throw hostError(error, 'storage_image_attach');
    }
    const result = await handleCommand(deps, imageId, { type: 'ConfirmAttach', attachId: heldId }, ctx, { loaded: requested });
    deps.metrics?.count('AttachSucceeded', { mode: 'hot' });
    return viewOf(result.state, result.version);
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
      const { vmId, diskDev } = event.data as { vmId: number; diskDev: string };
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
