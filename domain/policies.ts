/**
 * The rules several places share, as pure functions: who may see or act on an image,
 * and whether an image may go onto a VM. The decider calls them, and so does every
 * check made before a host command runs, so a rule is written once.
 */
import { isLiveAttachable } from './catalog';
import { SIZE_MAX_MB } from './limits';
import { fail } from './errors';
import type { Actor, StorageImageState, VmView } from './state';

type Existing = Exclude<StorageImageState, { status: 'none' }>;

/** The user an actor speaks for, when it is a user or a portal acting for one. */
const speaksFor = (actor: Actor): number | undefined => (actor.kind === 'user' || actor.kind === 'portal' ? actor.userId : undefined);

/** Storage images are private: only the owner may act (CC1's image_permission); an admin or the system may act on any. */
export const checkImageAccess = (ownerId: number, actor: Actor): void => {
  const asks = speaksFor(actor);
  if (asks !== undefined && asks !== ownerId) fail('image_permission', 'This storage image belongs to another user.');
};

/** Reading: the same rule, and a revoked image is gone for everyone but admins and the system (its audit trail stays). */
export const checkReadAccess = (state: StorageImageState, actor: Actor): Existing => {
  if (state.status === 'none') return fail('image_get', 'No such storage image.');
  checkImageAccess(state.image.userId, actor);
  if (state.status === 'locked' && actor.kind !== 'admin' && actor.kind !== 'system') fail('image_get', 'No such storage image.');
  return state;
};

/** A VM the caller may put disks on: known, and the image owner's (CC1's vm_get). */
export const checkVmOfOwner = (vm: VmView | undefined, vmId: number, ownerId: number): VmView => {
  if (!vm) return fail('vm_get', `No such VM ${vmId}.`);
  if (vm.userId !== ownerId) fail('vm_get', `VM ${vmId} does not belong to the owner of the storage image.`);
  return vm;
};

/** An image that may be attached: live, ready and free. */
export const checkAttachable = (state: Existing, vmId: number): Extract<Existing, { status: 'ok' }> => {
  if (state.status === 'locked') fail('storage_image_attach', 'The storage image was deleted.');
  if (state.status === 'ok' && state.attachment) {
    const where = state.attachment.vmId === vmId ? 'this VM' : 'another VM';
    fail('image_attached', `The storage image is ${state.attachment.phase === 'attaching' ? 'being attached' : 'attached'} to ${where}.`);
  }
  if (state.status !== 'ok') return fail('storage_image_attach', `A storage image in state ${state.status} cannot be attached.`);
  return state;
};

/** Only virtio and usb disks can be plugged into (or out of) a running VM. */
export const checkHotPlug = (state: Extract<Existing, { status: 'ok' }>, vm: VmView): void => {
  if (!vm.running) {
    fail('storage_image_attach', `VM ${vm.vmId} is not running; attach disks of a VM being created with POST /vms/${vm.vmId}/disks.`);
  }
  if (!isLiveAttachable(state.image.diskController)) {
    fail(
      'storage_image_attach',
      `A ${state.image.diskController} disk cannot be plugged into a running VM; only virtio and usb can. Attach it while the VM is being created.`,
    );
  }
};

/** Repairs that override the rules (force revoke, force detach, disk retry) are for admins (and the system acting for an operator). */
export const checkRepairer = (actor: Actor): void => {
  if (actor.kind !== 'admin' && actor.kind !== 'system') fail('admin_required', 'Only an administrator may repair a storage image.');
};

/**
 * How an image may grow to `sizeMb`: a detached one by growing its file; one attached
 * to a VM on the virtio bus live (virsh blockresize). Only larger sizes; only images
 * that are ok (made, not deleted); other attached buses must be detached first.
 */
export type Growth = { how: 'file'; fromMb: number } | { how: 'live'; fromMb: number; vmId: number; diskDev: string };

export const checkResizable = (state: Existing, sizeMb: number): Growth => {
  if (state.status === 'locked') return fail('image_resize', 'The storage image was deleted.');
  if (state.status !== 'ok') return fail('image_resize', `A storage image in state ${state.status} cannot be resized.`);
  const fromMb = state.image.sizeMb;
  if (!Number.isSafeInteger(sizeMb) || sizeMb > SIZE_MAX_MB) return fail('image_invalid_size', `size must be a whole number of MB up to ${SIZE_MAX_MB}.`);
  if (sizeMb <= fromMb) return fail('image_invalid_size', `A storage image only grows: it has ${fromMb} MB, ${sizeMb} MB asked.`);
  const attachment = state.attachment;
  if (!attachment) return { how: 'file', fromMb };
  if (attachment.phase === 'attaching') return fail('image_attached', 'An attach of this storage image is in progress; try again shortly.');
  if (state.image.diskController !== 'virtio') {
    return fail('image_attached', `A ${state.image.diskController} disk cannot grow while attached; only virtio disks grow live. Detach it first.`);
  }
  return { how: 'live', fromMb, vmId: attachment.vmId, diskDev: attachment.diskDev };
};
