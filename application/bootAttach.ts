/**
 * Boot-time attach (CC1 did it while creating a VM): for a VM that is not running, every
 * image asked for is recorded as attached, each with a device chosen, in ONE transaction
 * with the VM's claims: a refusal of any image leaves none attached. No virsh call: the
 * disks go into the domain XML at start (bootDiskXml). Retrying the same request reuses
 * the devices already given.
 */
import { allocateDevice } from '../domain/devices';
import { fail } from '../domain/errors';
import { decide, evolve, streamIdOf, type Actor } from '../domain/storageImage';
import { attachIdAt } from './commandHandling';
import { vmViewOf } from './hotAttach';
import { contextOf, viewOf, type ServiceDeps } from './service';
import { ConcurrencyError, DeviceClaimError, type ImageView, type StepEffects, type StreamAppend } from './storePorts';

const ROUNDS = 10;

export const attachAtBoot = async (deps: ServiceDeps, vmId: number, userId: number, imageIds: number[], actor: Actor): Promise<ImageView[]> => {
  // The images act as the VM's owner: a portal or admin asks for that user.
  const forUser: Actor = actor.kind === 'admin' ? actor : { kind: 'portal', userId };
  const ctx = contextOf(deps, forUser);
  for (let round = 0; round < ROUNDS; round++) {
    const [vm, ...loaded] = await Promise.all([deps.vms.get(vmId), ...imageIds.map((id) => deps.events.load(streamIdOf(id)))]);
    if (vm && vm.userId !== userId) fail('vm_get', `VM ${vmId} belongs to another user.`);
    const taken = Object.keys(vm?.devices ?? {});
    const appends: StreamAppend[] = [];
    const effects: Required<Pick<StepEffects, 'claims'>> = { claims: [] };
    const views: ImageView[] = [];
    loaded.forEach((stream, i) => {
      const imageId = imageIds[i]!;
      const { state } = stream;
      if (state.status === 'ok' && state.attachment?.vmId === vmId && state.attachment.phase === 'attached') {
        views.push(viewOf(state, stream.version)); // given already (a retry)
        return;
      }
      if (state.status !== 'none' && state.image.userId !== userId) fail('image_permission', `Storage image ${imageId} belongs to another user.`);
      const bus = state.status === 'none' ? 'virtio' : state.image.diskController;
      const diskDev = allocateDevice(bus, taken, deps.config.maxDisksPerVm);
      const attachId = attachIdAt(imageId, stream);
      const [event] = decide({ type: 'AttachAtBoot', vm: vmViewOf(vm), vmId, diskDev, attachId }, state, ctx);
      if (!event) return;
      taken.push(diskDev);
      const stateAfter = evolve(state, event);
      appends.push({ streamId: streamIdOf(imageId), expectedVersion: stream.version, event, stateAfter });
      // "Not running" is checked in the write's condition too: a VM that starts meanwhile cancels it.
      const vmTime = vm?.stateTime === undefined ? {} : { vmTime: vm.stateTime };
      effects.claims.push({ vmId, userId, dev: diskDev, imageId, attachId, maxDevices: deps.config.maxDisksPerVm, vmState: 'not-running', ...vmTime });
      views.push(viewOf(stateAfter, stream.version + 1));
    });
    if (appends.length === 0) return views;
    try {
      await deps.events.commit(appends, effects);
      deps.metrics?.count('AttachSucceeded', { mode: 'boot' });
      return views;
    } catch (error) {
      if (error instanceof DeviceClaimError && error.reason === 'full') fail('storage_image_attach', `The VM already has ${deps.config.maxDisksPerVm} storage disks.`);
      if (error instanceof DeviceClaimError && error.reason === 'other_owner') fail('vm_get', `VM ${vmId} belongs to another user.`);
      if (error instanceof DeviceClaimError && error.reason === 'vm_state') {
        fail('storage_image_attach', `VM ${vmId} is running already; use the hot attach of a virtio or usb disk.`);
      }
      if (!(error instanceof ConcurrencyError || error instanceof DeviceClaimError)) throw error;
      // Lost a race (an image or a device changed): read everything again and decide anew.
    }
  }
  return fail('concurrency_conflict', 'The VM or its images are changing concurrently; try again.');
};

const xmlAttr = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The `<disk>` elements of a VM's storage images, for its domain XML. */
export const bootDiskXml = async (deps: ServiceDeps, vmId: number, actor: Actor): Promise<{ imageId: number; diskDev: string; xml: string }[]> => {
  const vm = await deps.vms.get(vmId);
  if (!vm) return fail('vm_get', 'No such VM.');
  // A user reads only their own VM's; the portal service (which starts VMs) and admins read any.
  if (actor.kind === 'user' && actor.userId !== vm.userId) fail('vm_get', 'No such VM.');
  const claims = Object.entries(vm.devices).sort(([a], [b]) => a.localeCompare(b));
  const heads = await Promise.all(claims.map(([, claim]) => deps.events.load(streamIdOf(claim.imageId))));
  const disks = [];
  for (const [i, [diskDev, claim]] of claims.entries()) {
    const { state } = heads[i]!;
    if (state.status !== 'ok' || state.attachment?.phase !== 'attached' || state.attachment.vmId !== vmId) continue;
    const file = deps.storage.pathOf({ userId: state.image.userId, imageId: claim.imageId, storage: state.image.storage });
    const bus = state.image.diskController;
    disks.push({
      imageId: claim.imageId,
      diskDev,
      xml: `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${xmlAttr(file)}'/><target dev='${diskDev}' bus='${bus}'/></disk>`,
    });
  }
  return disks;
};
