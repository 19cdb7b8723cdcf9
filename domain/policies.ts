/**
 * The rules several places share, as pure functions: who may see or act on an image,
 * and whether an image may go onto a VM. The decider calls them, and so does every
 * check made before a host command runs, so a rule is written once.
 */
import { isLiveAttachable } from './catalog';
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
