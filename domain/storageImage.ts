/**
 * The StorageImage aggregate, as a decider: `decide(command, state) -> events`,
 * `evolve(state, event) -> state`, `initialState`. No I/O: everything the rules
 * need (the caller, the clock, the VM) comes in with the command.
 */
import { isDiskController, isFilesystem, type DiskController, type Filesystem, type ImageStateName } from './catalog';
import { fail } from './errors';
import { SIZE_MAX_MB, SIZE_MIN_MB } from './limits';
import { checkAttachable, checkHotPlug, checkImageAccess, checkRepairer, checkResizable, checkVmOfOwner } from './policies';
import type { Actor, Attachment, AttachMode, Cause, ImageFacts, StorageImageState, VmView } from './state';

export type { Actor, AdminReason, Attachment, AttachMode, Cause, ImageFacts, StorageImageState, SystemReason, VmView } from './state';

export const causeOf = (actor: Actor): Cause =>
  actor.kind === 'system'
    ? { kind: 'system', reason: actor.reason }
    : actor.kind === 'admin' && actor.reason
      ? { kind: 'admin', userId: actor.userId, reason: actor.reason }
      : { kind: actor.kind, userId: actor.userId };

// ---------------------------------------------------------------------------
// Events

export type StorageImageEventData = {
  /** The image's facts as created (its creation date is the event's time). */
  StorageImageCreated: Omit<ImageFacts, 'creationDate' | 'storage'>;
  /**
   * The disk file is made, on that storage (an id from the configuration). Events
   * written before there were several storages have no `storage`: they mean `default`.
   */
  StorageImageDiskReady: { storage?: string };
  StorageImageDiskFailed: { reason: string };
  StorageImageEdited: { name?: string; description?: string; diskController?: DiskController };
  /**
   * A hot attach started: the device is claimed (in the same write), virsh is about to
   * run. `attachId` names this attach: the device claim carries it, and only this
   * attach's outcome, a detach or the VM's stop may free the claim.
   */
  StorageImageAttachRequested: { vmId: number; diskDev: string; attachId: string };
  StorageImageAttached: { vmId: number; diskDev: string; mode: AttachMode; attachId: string };
  StorageImageAttachFailed: { vmId: number; diskDev: string; reason: string; attachId?: string };
  StorageImageDetached: { vmId: number; diskDev: string; attachId?: string };
  /** `forced`: an admin's repair revoked an image that was not ok (failed, stuck adding). */
  StorageImageRevoked: { forced?: boolean };
  /** An admin asked for the disk file again (a failed or stuck `adding` image): the disk-file reaction makes it. */
  StorageImageDiskRetried: { from: 'failed' | 'adding' };
  /** The disk grew (its file, or live through the hypervisor for an attached virtio disk), quota counted at `toMb`. */
  StorageImageResized: { fromMb: number; toMb: number };
};

export type StorageImageEventType = keyof StorageImageEventData;

/** An event as `decide` returns it: no store envelope (stream id, version) yet. */
export type Event<T extends StorageImageEventType> = { type: T; data: StorageImageEventData[T]; time: string; cause: Cause };

export type StorageImageCreated = Event<'StorageImageCreated'>;
export type StorageImageDiskReady = Event<'StorageImageDiskReady'>;
export type StorageImageDiskFailed = Event<'StorageImageDiskFailed'>;
export type StorageImageEdited = Event<'StorageImageEdited'>;
export type StorageImageAttachRequested = Event<'StorageImageAttachRequested'>;
export type StorageImageAttached = Event<'StorageImageAttached'>;
export type StorageImageAttachFailed = Event<'StorageImageAttachFailed'>;
export type StorageImageDetached = Event<'StorageImageDetached'>;
export type StorageImageRevoked = Event<'StorageImageRevoked'>;
export type StorageImageDiskRetried = Event<'StorageImageDiskRetried'>;
export type StorageImageResized = Event<'StorageImageResized'>;

export type NewEvent =
  | StorageImageCreated
  | StorageImageDiskReady
  | StorageImageDiskFailed
  | StorageImageEdited
  | StorageImageAttachRequested
  | StorageImageAttached
  | StorageImageAttachFailed
  | StorageImageDetached
  | StorageImageRevoked
  | StorageImageDiskRetried
  | StorageImageResized;

/** An event as stored: with its stream id and version. */
export type StorageImageEvent = NewEvent & { streamId: string; version: number };

export const streamIdOf = (imageId: number): string => `image-${imageId}`;

// ---------------------------------------------------------------------------
// State

export const initialState = (): StorageImageState => ({ status: 'none' });

/** CC1's state name of an image (`locked` is a revoked image). */
export const cc1StateOf = (state: Exclude<StorageImageState, { status: 'none' }>): ImageStateName => state.status;

// ---------------------------------------------------------------------------
// Commands


export type CreateStorageImage = {
  type: 'CreateStorageImage';
  imageId: number;
  name: string;
  description: string;
  diskController: DiskController;
  filesystem: Filesystem;
  sizeMb: number;
};
export type MarkDiskReady = { type: 'MarkDiskReady'; storage: string };
export type MarkDiskFailed = { type: 'MarkDiskFailed'; reason: string };
export type EditStorageImage = { type: 'EditStorageImage'; name?: string; description?: string; diskController?: DiskController };
export type RequestHotAttach = { type: 'RequestHotAttach'; vm: VmView | undefined; diskDev: string; attachId: string };
export type ConfirmAttach = { type: 'ConfirmAttach'; attachId: string };
export type FailAttach = { type: 'FailAttach'; attachId: string; reason: string };
/** A VM being created: recorded as attached, the disk goes into the domain XML at start. */
export type AttachAtBoot = { type: 'AttachAtBoot'; vm: VmView | undefined; vmId: number; diskDev: string; attachId: string };
export type Detach = { type: 'Detach'; vmId?: number };
export type DetachStoppedVm = { type: 'DetachStoppedVm'; vmId: number };
export type RevokeStorageImage = { type: 'RevokeStorageImage' };
/** Admin repair: revoke in any state but attached (failed, stuck adding included). */
export type ForceRevokeStorageImage = { type: 'ForceRevokeStorageImage' };
/** Admin repair: make the disk file of a failed or stuck `adding` image again. */
export type RetryDiskFile = { type: 'RetryDiskFile' };
/** Admin repair: detach in the records only (the host is dead); an attach in progress ends failed. */
export type ForceDetach = { type: 'ForceDetach'; vmId?: number };
/** Grow to `sizeMb` (the host grew the file, or the live disk, just before). */
export type ResizeStorageImage = { type: 'ResizeStorageImage'; sizeMb: number };

export type StorageImageCommand =
  | CreateStorageImage
  | MarkDiskReady
  | MarkDiskFailed
  | EditStorageImage
  | RequestHotAttach
  | ConfirmAttach
  | FailAttach
  | AttachAtBoot
  | Detach
  | DetachStoppedVm
  | RevokeStorageImage
  | ForceRevokeStorageImage
  | RetryDiskFile
  | ForceDetach
  | ResizeStorageImage;

export type CommandContext = { actor: Actor; now: string };

// ---------------------------------------------------------------------------
// Rules on values

export const NAME_MAX = 45;
export const DESCRIPTION_MAX = 512;
export { SIZE_MAX_MB, SIZE_MIN_MB };
/** mkfs.xfs refuses filesystems under 300 MB: refuse the image up front, not at mkfs time. */
export const MIN_SIZE_MB_BY_FILESYSTEM: Partial<Record<Filesystem, number>> = { xfs: 300 };

/** Length in characters (code points), not UTF-16 units. */
const charCount = (s: string): number => [...s].length;

/** Lone UTF-16 surrogates and NUL cannot be stored faithfully (DynamoDB strings are UTF-8). */
const checkWellFormed = (field: string, value: string): void => {
  if (/[\uD800-\uDFFF]/u.test(value) || value.includes('\u0000')) fail('validation', `${field} must be well-formed text (no lone surrogates, no NUL).`);
};

const checkName = (name: string): void => {
  checkWellFormed('name', name);
  const n = charCount(name);
  if (n < 1 || n > NAME_MAX) fail('validation', `name must be 1 to ${NAME_MAX} characters (got ${n}).`);
  if (name.trim().length === 0) fail('validation', 'name must not be blank.');
};

const checkDescription = (description: string): void => {
  checkWellFormed('description', description);
  const n = charCount(description);
  if (n > DESCRIPTION_MAX) fail('validation', `description must be at most ${DESCRIPTION_MAX} characters (got ${n}).`);
};

const checkController = (c: unknown): void => {
  if (!isDiskController(c)) fail('validation', `unknown disk controller ${JSON.stringify(c)}.`);
};

// ---------------------------------------------------------------------------
// decide

type Existing = Exclude<StorageImageState, { status: 'none' }>;
type Ready = Extract<Existing, { status: 'ok' }>;

const mustExist = (state: StorageImageState): Existing =>
  state.status === 'none' ? fail('image_get', 'No such storage image.') : state;

const event = <T extends StorageImageEventType>(type: T, data: StorageImageEventData[T], ctx: CommandContext): Event<T> => ({
  type,
  data,
  time: ctx.now,
  cause: causeOf(ctx.actor),
});

/**
 * The user's quota is not checked here: it spans all their images, so the store checks
 * it in the same transaction that appends Created (docs/event-store.md).
 */
/** What a new image must be (name, description, controller, filesystem, size): checked before anything is asked of a host. */
export const checkNewImage = (input: Omit<CreateStorageImage, 'type' | 'imageId'>): void => {
  checkName(input.name);
  checkDescription(input.description);
  checkController(input.diskController);
  if (!isFilesystem(input.filesystem)) fail('validation', `unknown filesystem ${JSON.stringify(input.filesystem)}.`);
  if (!Number.isSafeInteger(input.sizeMb) || input.sizeMb < SIZE_MIN_MB || input.sizeMb > SIZE_MAX_MB) {
    fail('image_invalid_size', `size must be a whole number of MB from ${SIZE_MIN_MB} to ${SIZE_MAX_MB}.`);
  }
  const minimum = MIN_SIZE_MB_BY_FILESYSTEM[input.filesystem] ?? SIZE_MIN_MB;
  if (input.sizeMb < minimum) fail('image_invalid_size', `A ${input.filesystem} disk needs at least ${minimum} MB.`);
};

const create = (command: CreateStorageImage, state: StorageImageState, ctx: CommandContext): [StorageImageCreated] => {
  if (state.status !== 'none') fail('concurrency_conflict', `Storage image ${command.imageId} exists already.`);
  if (ctx.actor.kind === 'system') return fail('validation', 'The system does not create images.');
  checkNewImage(command);
  const { imageId, name, description, diskController, filesystem, sizeMb } = command;
  return [event('StorageImageCreated', { imageId, userId: ctx.actor.userId, name, description, diskController, filesystem, sizeMb }, ctx)];
};

/** The disk file was made (or failed) on the storage host. Repeats change nothing. */
const markDisk = (command: MarkDiskReady | MarkDiskFailed, state: Existing, ctx: CommandContext): [StorageImageDiskReady | StorageImageDiskFailed] | [] => {
  if (state.status !== 'adding') return [];
  return command.type === 'MarkDiskReady'
    ? [event('StorageImageDiskReady', { storage: command.storage }, ctx)]
    : [event('StorageImageDiskFailed', { reason: command.reason }, ctx)];
};

const edit = (command: EditStorageImage, state: Existing, ctx: CommandContext): [StorageImageEdited] | [] => {
  if (state.status === 'locked') fail('image_edit', 'The storage image was deleted.');
  if (state.status !== 'ok' && state.status !== 'adding') fail('image_edit', `A storage image in state ${state.status} cannot be edited.`);
  const changes: StorageImageEventData['StorageImageEdited'] = {};
  if (command.name !== undefined) {
    checkName(command.name);
    if (command.name !== state.image.name) changes.name = command.name;
  }
  if (command.description !== undefined) {
    checkDescription(command.description);
    if (command.description !== state.image.description) changes.description = command.description;
  }
  if (command.diskController !== undefined) {
    checkController(command.diskController);
    if (command.diskController !== state.image.diskController) {
      if (state.status === 'ok' && state.attachment) fail('image_attached', 'Detach the storage image before changing its disk controller.');
      changes.diskController = command.diskController;
    }
  }
  return Object.keys(changes).length === 0 ? [] : [event('StorageImageEdited', changes, ctx)];
};

const requestHotAttach = (command: RequestHotAttach, state: Existing, ctx: CommandContext): [StorageImageAttachRequested] => {
  const vmId = command.vm?.vmId ?? -1;
  const ready = checkAttachable(state, vmId);
  const vm = checkVmOfOwner(command.vm, vmId, ready.image.userId);
  checkHotPlug(ready, vm);
  return [event('StorageImageAttachRequested', { vmId, diskDev: command.diskDev, attachId: command.attachId }, ctx)];
};

const attachingAs = (state: Existing, attachId: string): Extract<Attachment, { phase: 'attaching' }> | undefined =>
  state.status === 'ok' && state.attachment?.phase === 'attaching' && state.attachment.attachId === attachId ? state.attachment : undefined;

/** The hypervisor really attached the disk. A repeat changes nothing. */
const confirmAttach = (command: ConfirmAttach, state: Existing, ctx: CommandContext): [StorageImageAttached] | [] => {
  if (state.status === 'ok' && state.attachment?.phase === 'attached' && state.attachment.attachId === command.attachId) return [];
  const attaching = attachingAs(state, command.attachId);
  if (!attaching) return fail('storage_image_attach', 'No attach of this storage image is in progress.');
  const { vmId, diskDev, attachId } = attaching;
  return [event('StorageImageAttached', { vmId, diskDev, mode: 'hot', attachId }, ctx)];
};

/** virsh failed, did not answer, or the VM went away: the attach ends, its device is freed. */
const failAttach = (command: FailAttach, state: Existing, ctx: CommandContext): [StorageImageAttachFailed] | [] => {
  const attaching = attachingAs(state, command.attachId);
  if (!attaching) return [];
  const { vmId, diskDev, attachId } = attaching;
  return [event('StorageImageAttachFailed', { vmId, diskDev, reason: command.reason, attachId }, ctx)];
};

const attachAtBoot = (command: AttachAtBoot, state: Existing, ctx: CommandContext): [StorageImageAttached] | [] => {
  if (state.status === 'ok' && state.attachment?.phase === 'attached' && state.attachment.vmId === command.vmId && state.attachment.mode === 'boot') return [];
  const ready: Ready = checkAttachable(state, command.vmId);
  if (command.vm) checkVmOfOwner(command.vm, command.vmId, ready.image.userId);
  if (command.vm?.running) {
    fail('storage_image_attach', `VM ${command.vmId} is running already; use the hot attach of a virtio or usb disk.`);
  }
  return [event('StorageImageAttached', { vmId: command.vmId, diskDev: command.diskDev, mode: 'boot', attachId: command.attachId }, ctx)];
};

const detach = (command: Detach, state: Existing, ctx: CommandContext): [StorageImageDetached] => {
  const attachment = state.status === 'ok' ? state.attachment : null;
  if (!attachment) return fail('storage_image_detach', 'The storage image is not attached.');
  if (command.vmId !== undefined && attachment.vmId !== command.vmId) {
    fail('storage_image_detach', `The storage image is not attached to VM ${command.vmId}.`);
  }
  if (attachment.phase === 'attaching') fail('storage_image_detach', 'An attach of this storage image is in progress; try again shortly.');
  const { vmId, diskDev, attachId } = attachment;
  return [event('StorageImageDetached', { vmId, diskDev, attachId }, ctx)];
};

/** The VM is gone: detach in the records only. Repeats and other VMs change nothing. */
const detachStoppedVm = (command: DetachStoppedVm, state: Existing, ctx: CommandContext): [StorageImageDetached | StorageImageAttachFailed] | [] => {
  const attachment = state.status === 'ok' ? state.attachment : null;
  if (!attachment || attachment.vmId !== command.vmId) return [];
  const { vmId, diskDev, attachId } = attachment;
  if (attachment.phase === 'attaching') {
    return [event('StorageImageAttachFailed', { vmId, diskDev, reason: 'VM stopped during attach', attachId }, ctx)];
  }
  return [event('StorageImageDetached', { vmId, diskDev, attachId }, ctx)];
};

const revoke = (state: Existing, ctx: CommandContext): [StorageImageRevoked] | [] => {
  if (state.status === 'locked') return []; // deleted already: a retry is not an error
  if (state.status === 'ok' && state.attachment) fail('image_attached', 'Detach the storage image before deleting it.');
  if (state.status !== 'ok') fail('image_delete', `A storage image in state ${state.status} cannot be deleted.`);
  return [event('StorageImageRevoked', {}, ctx)];
};

const forceRevoke = (state: Existing, ctx: CommandContext): [StorageImageRevoked] | [] => {
  checkRepairer(ctx.actor);
  if (state.status === 'locked') return [];
  if (state.status === 'ok' && state.attachment) fail('image_attached', 'Detach the storage image before deleting it (force detach it if its host is dead).');
  return [event('StorageImageRevoked', state.status === 'ok' ? {} : { forced: true }, ctx)];
};

const retryDiskFile = (state: Existing, ctx: CommandContext): [StorageImageDiskRetried] => {
  checkRepairer(ctx.actor);
  if (state.status !== 'failed' && state.status !== 'adding') return fail('image_retry', `Only a failed or adding storage image can have its disk file made again (this one is ${state.status}).`);
  return [event('StorageImageDiskRetried', { from: state.status }, ctx)];
};

const forceDetach = (command: ForceDetach, state: Existing, ctx: CommandContext): [StorageImageDetached | StorageImageAttachFailed] => {
  checkRepairer(ctx.actor);
  const attachment = state.status === 'ok' ? state.attachment : null;
  if (!attachment) return fail('storage_image_detach', 'The storage image is not attached.');
  if (command.vmId !== undefined && attachment.vmId !== command.vmId) fail('storage_image_detach', `The storage image is not attached to VM ${command.vmId}.`);
  const { vmId, diskDev, attachId } = attachment;
  return attachment.phase === 'attaching'
    ? [event('StorageImageAttachFailed', { vmId, diskDev, reason: 'forced detach', attachId }, ctx)]
    : [event('StorageImageDetached', { vmId, diskDev, attachId }, ctx)];
};

const resize = (command: ResizeStorageImage, state: Existing, ctx: CommandContext): [StorageImageResized] | [] => {
  // A retry after the step committed: the image has that size already.
  if (state.status === 'ok' && state.image.sizeMb === command.sizeMb) return [];
  const growth = checkResizable(state, command.sizeMb);
  return [event('StorageImageResized', { fromMb: growth.fromMb, toMb: command.sizeMb }, ctx)];
};

/** At most one event per command: what the command step appends, nothing dropped. */
export const decide = (command: StorageImageCommand, state: StorageImageState, ctx: CommandContext): [NewEvent] | [] => {
  if (command.type === 'CreateStorageImage') return create(command, state, ctx);
  const existing = mustExist(state);
  checkImageAccess(existing.image.userId, ctx.actor);
  switch (command.type) {
    case 'MarkDiskReady':
    case 'MarkDiskFailed':
      return markDisk(command, existing, ctx);
    case 'EditStorageImage':
      return edit(command, existing, ctx);
    case 'RequestHotAttach':
      return requestHotAttach(command, existing, ctx);
    case 'ConfirmAttach':
      return confirmAttach(command, existing, ctx);
    case 'FailAttach':
      return failAttach(command, existing, ctx);
    case 'AttachAtBoot':
      return attachAtBoot(command, existing, ctx);
    case 'Detach':
      return detach(command, existing, ctx);
    case 'DetachStoppedVm':
      return detachStoppedVm(command, existing, ctx);
    case 'RevokeStorageImage':
      return revoke(existing, ctx);
    case 'ForceRevokeStorageImage':
      return forceRevoke(existing, ctx);
    case 'RetryDiskFile':
      return retryDiskFile(existing, ctx);
    case 'ForceDetach':
      return forceDetach(command, existing, ctx);
    case 'ResizeStorageImage':
      return resize(command, existing, ctx);
    default: {
      const unreachable: never = command;
      return fail('validation', `unknown command ${JSON.stringify(unreachable)}`);
    }
  }
};

// ---------------------------------------------------------------------------
// evolve

export const evolve = (state: StorageImageState, event: NewEvent): StorageImageState => {
  if (event.type === 'StorageImageCreated') {
    return { status: 'adding', image: { ...event.data, creationDate: event.time } };
  }
  if (state.status === 'none') return state; // no event but Created starts a stream
  switch (event.type) {
    case 'StorageImageDiskReady':
      return { status: 'ok', image: event.data.storage === undefined ? state.image : { ...state.image, storage: event.data.storage }, attachment: null };
    case 'StorageImageDiskFailed':
      return { status: 'failed', image: state.image, reason: event.data.reason };
    case 'StorageImageEdited':
      return { ...state, image: { ...state.image, ...event.data } } as StorageImageState;
    case 'StorageImageAttachRequested':
      return { status: 'ok', image: state.image, attachment: { phase: 'attaching', ...event.data, since: event.time } };
    case 'StorageImageAttached':
      return { status: 'ok', image: state.image, attachment: { phase: 'attached', ...event.data, since: event.time } };
    case 'StorageImageAttachFailed':
    case 'StorageImageDetached':
      return { status: 'ok', image: state.image, attachment: null };
    case 'StorageImageRevoked':
      return { status: 'locked', image: state.image };
    case 'StorageImageDiskRetried':
      return { status: 'adding', image: state.image };
    case 'StorageImageResized':
      return { ...state, image: { ...state.image, sizeMb: event.data.toMb } } as StorageImageState;
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
};

export const fold = (events: readonly NewEvent[], from: StorageImageState = initialState()): StorageImageState => events.reduce(evolve, from);
