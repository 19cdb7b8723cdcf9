/**
 * The StorageImage aggregate, as a decider: `decide(command, state) -> events`,
 * `evolve(state, event) -> state`, `initialState`. No I/O: everything the rules
 * need (the caller, the clock, the VM) comes in with the command.
 */
import { isDiskController, isFilesystem, type DiskController, type Filesystem, type ImageStateName } from './catalog';
import { allocateDevice } from './devices';
import { fail } from './errors';
import { SIZE_MAX_MB, SIZE_MIN_MB } from './limits';
import { checkAttachable, checkHotPlug, checkImageAccess, checkRepairer, checkResizable, checkVmOfOwner } from './policies';
import type { Actor, Attachment, AttachMode, Cause, ImageFacts, OpenOperation, StorageImageState, VmView } from './state';

export type { Actor, AdminReason, Attachment, AttachMode, Cause, ImageFacts, OpenOperation, StorageImageState, SystemReason, VmView } from './state';

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
  StorageImageDiskReady: { storage?: string; opId?: string };
  StorageImageDiskFailed: { reason: string; opId?: string };
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
  /** The storage host removed the revoked image's disk file (or found it gone): the revoke's outcome. */
  StorageImageDiskFileRemoved: Record<string, never>;
  /**
   * An admin asked for the disk file again (a failed or stuck `adding` image): the disk-file
   * reaction makes it. `opId` names this try: only its outcome ends the `adding` (older events: any).
   */
  StorageImageDiskRetried: { from: 'failed' | 'adding'; opId?: string };
  /** A resize's intent: the quota counts `toMb` from now on; the host grows the disk next. */
  StorageImageResizeRequested: { opId: string; fromMb: number; toMb: number };
  /** The disk grew (its file, or live through the hypervisor for an attached virtio disk), quota counted at `toMb`. */
  StorageImageResized: { fromMb: number; toMb: number; opId?: string };
  /** The host could not grow the disk: it keeps `fromMb`, and so does the quota. */
  StorageImageResizeFailed: { opId: string; fromMb: number; toMb: number; reason: string };
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
export type StorageImageDiskFileRemoved = Event<'StorageImageDiskFileRemoved'>;
export type StorageImageDiskRetried = Event<'StorageImageDiskRetried'>;
export type StorageImageResizeRequested = Event<'StorageImageResizeRequested'>;
export type StorageImageResized = Event<'StorageImageResized'>;
export type StorageImageResizeFailed = Event<'StorageImageResizeFailed'>;

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
  | StorageImageDiskFileRemoved
  | StorageImageDiskRetried
  | StorageImageResizeRequested
  | StorageImageResized
  | StorageImageResizeFailed;

/** An event as stored: with its stream id and version. */
export type StorageImageEvent = NewEvent & { streamId: string; version: number };

export const streamIdOf = (imageId: number): string => `image-${imageId}`;

/** An operation's id: the stream and the version of its intent event (an attach's is its AttachRequested). */
export const operationIdOf = (imageId: number, intentVersion: number): string => `${streamIdOf(imageId)}@${intentVersion}`;

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
/** The disk file's outcome, for the operation `opId` that made it (absent: whichever is open). */
export type MarkDiskReady = { type: 'MarkDiskReady'; storage: string; opId?: string };
export type MarkDiskFailed = { type: 'MarkDiskFailed'; reason: string; opId?: string };
/** The storage host removed a revoked image's file. */
export type MarkDiskFileRemoved = { type: 'MarkDiskFileRemoved' };
export type EditStorageImage = { type: 'EditStorageImage'; name?: string; description?: string; diskController?: DiskController };
/** The VM as read with the image (its devices taken): the decider picks the first free device. */
export type RequestHotAttach = { type: 'RequestHotAttach'; vm: VmView | undefined; devicesTaken: readonly string[]; maxDisks: number; attachId: string };
export type ConfirmAttach = { type: 'ConfirmAttach'; attachId: string };
export type FailAttach = { type: 'FailAttach'; attachId: string; reason: string };
/** A VM being created: recorded as attached, the disk goes into the domain XML at start. */
export type AttachAtBoot = { type: 'AttachAtBoot'; vm: VmView | undefined; vmId: number; diskDev: string; attachId: string };
/** Ends the attachment `attachId` (the one the caller read and unplugged), and no other. */
export type Detach = { type: 'Detach'; attachId: string };
/** The VM stopped: its attachment (the stop's caller picks which, by the VM's claims) ends in the records. */
export type DetachStoppedVm = { type: 'DetachStoppedVm'; vmId: number };
export type RevokeStorageImage = { type: 'RevokeStorageImage' };
/** Admin repair: revoke in any state but attached (failed, stuck adding included). */
export type ForceRevokeStorageImage = { type: 'ForceRevokeStorageImage' };
/** Admin repair: make the disk file of a failed or stuck `adding` image again. */
export type RetryDiskFile = { type: 'RetryDiskFile'; opId: string };
/** Admin repair: detach in the records only (the host is dead); an attach in progress ends failed. */
export type ForceDetach = { type: 'ForceDetach'; vmId?: number };
/** A resize's intent: grow to `sizeMb` as the operation `opId` (the quota grows in the same step). */
export type RequestResize = { type: 'RequestResize'; sizeMb: number; opId: string };
/** The host grew the disk for `opId`. */
export type CompleteResize = { type: 'CompleteResize'; opId: string };
/** The host could not grow it for `opId` (the quota shrinks back in the same step). */
export type FailResize = { type: 'FailResize'; opId: string; reason: string };

export type StorageImageCommand =
  | CreateStorageImage
  | MarkDiskReady
  | MarkDiskFailed
  | MarkDiskFileRemoved
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
  | RequestResize
  | CompleteResize
  | FailResize;

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
  // A slow outcome of an earlier try (a retry began since) is not this try's.
  if (command.opId !== undefined && state.fileOp !== undefined && state.fileOp !== command.opId) return [];
  const op = state.fileOp === undefined ? {} : { opId: state.fileOp };
  return command.type === 'MarkDiskReady'
    ? [event('StorageImageDiskReady', { storage: command.storage, ...op }, ctx)]
    : [event('StorageImageDiskFailed', { reason: command.reason, ...op }, ctx)];
};

const markFileRemoved = (state: Existing, ctx: CommandContext): [StorageImageDiskFileRemoved] | [] =>
  state.status === 'locked' && !state.fileRemoved ? [event('StorageImageDiskFileRemoved', {}, ctx)] : [];

/** An operation in progress blocks what would change what it reserved. */
const checkNoOpenOperation = (state: Existing, code: 'image_delete' | 'storage_image_attach' | 'image_resize'): void => {
  if (state.status === 'ok' && state.operation) fail(code, `A ${state.operation.type} of this storage image is in progress; try again shortly.`);
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
  checkNoOpenOperation(state, 'storage_image_attach');
  const vmId = command.vm?.vmId ?? -1;
  const ready = checkAttachable(state, vmId);
  const vm = checkVmOfOwner(command.vm, vmId, ready.image.userId);
  checkHotPlug(ready, vm);
  // On this image's bus as it is now: a retry decides on fresh facts, device included.
  const diskDev = allocateDevice(ready.image.diskController, command.devicesTaken, command.maxDisks);
  return [event('StorageImageAttachRequested', { vmId, diskDev, attachId: command.attachId }, ctx)];
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
  checkNoOpenOperation(state, 'storage_image_attach');
  const ready: Ready = checkAttachable(state, command.vmId);
  if (command.vm) checkVmOfOwner(command.vm, command.vmId, ready.image.userId);
  if (command.vm?.running) {
    fail('storage_image_attach', `VM ${command.vmId} is running already; use the hot attach of a virtio or usb disk.`);
  }
  return [event('StorageImageAttached', { vmId: command.vmId, diskDev: command.diskDev, mode: 'boot', attachId: command.attachId }, ctx)];
};

/** Pinned to the attachment the caller unplugged: a detach that lost a race never ends a newer attachment. */
const detach = (command: Detach, state: Existing, ctx: CommandContext): [StorageImageDetached] | [] => {
  const attachment = state.status === 'ok' ? state.attachment : null;
  if (!attachment || attachment.attachId !== command.attachId) return []; // that attachment ended already
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
  checkNoOpenOperation(state, 'image_delete');
  return [event('StorageImageRevoked', {}, ctx)];
};

const forceRevoke = (state: Existing, ctx: CommandContext): [StorageImageRevoked] | [] => {
  checkRepairer(ctx.actor);
  if (state.status === 'locked') return [];
  if (state.status === 'ok' && state.attachment) fail('image_attached', 'Detach the storage image before deleting it (force detach it if its host is dead).');
  checkNoOpenOperation(state, 'image_delete');
  return [event('StorageImageRevoked', state.status === 'ok' ? {} : { forced: true }, ctx)];
};

const retryDiskFile = (command: RetryDiskFile, state: Existing, ctx: CommandContext): [StorageImageDiskRetried] => {
  checkRepairer(ctx.actor);
  if (state.status !== 'failed' && state.status !== 'adding') return fail('image_retry', `Only a failed or adding storage image can have its disk file made again (this one is ${state.status}).`);
  return [event('StorageImageDiskRetried', { from: state.status, opId: command.opId }, ctx)];
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

/** The intent: reserves the growth (the quota, in the same step) before any host grows anything. */
const requestResize = (command: RequestResize, state: Existing, ctx: CommandContext): [StorageImageResizeRequested] | [] => {
  // A retry: that size is reached, or its resize is in progress (the caller finishes it).
  if (state.status === 'ok' && (state.image.sizeMb === command.sizeMb || state.operation?.toMb === command.sizeMb)) return [];
  if (state.status === 'ok' && state.operation) checkNoOpenOperation(state, 'image_resize');
  const growth = checkResizable(state, command.sizeMb);
  return [event('StorageImageResizeRequested', { opId: command.opId, fromMb: growth.fromMb, toMb: command.sizeMb }, ctx)];
};

const openResize = (state: Existing, opId: string): OpenOperation | undefined =>
  state.status === 'ok' && state.operation?.type === 'resize' && state.operation.opId === opId ? state.operation : undefined;

/** The outcome, pinned to its intent: a command naming another resize changes nothing and says so. */
const completeResize = (command: CompleteResize | FailResize, state: Existing, ctx: CommandContext): [StorageImageResized | StorageImageResizeFailed] | [] => {
  const open = openResize(state, command.opId);
  if (!open) {
    if (command.type === 'FailResize') return [];
    return fail('image_resize', `The resize ${command.opId} is not in progress (it ended, or another one is).`);
  }
  const { opId, fromMb, toMb } = open;
  return command.type === 'CompleteResize'
    ? [event('StorageImageResized', { fromMb, toMb, opId }, ctx)]
    : [event('StorageImageResizeFailed', { opId, fromMb, toMb, reason: command.reason }, ctx)];
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
    case 'MarkDiskFileRemoved':
      return markFileRemoved(existing, ctx);
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
      return retryDiskFile(command, existing, ctx);
    case 'ForceDetach':
      return forceDetach(command, existing, ctx);
    case 'RequestResize':
      return requestResize(command, existing, ctx);
    case 'CompleteResize':
    case 'FailResize':
      return completeResize(command, existing, ctx);
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
    // The disk file's operation is the Created itself (version 1 of the stream).
    return { status: 'adding', image: { ...event.data, creationDate: event.time }, fileOp: operationIdOf(event.data.imageId, 1) };
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
      return { ...okOf(state), attachment: { phase: 'attaching', ...event.data, since: event.time } };
    case 'StorageImageAttached':
      return { ...okOf(state), attachment: { phase: 'attached', ...event.data, since: event.time } };
    case 'StorageImageAttachFailed':
    case 'StorageImageDetached':
      return { ...okOf(state), attachment: null };
    case 'StorageImageRevoked':
      return { status: 'locked', image: state.image };
    case 'StorageImageDiskFileRemoved':
      return { status: 'locked', image: state.image, fileRemoved: true };
    case 'StorageImageDiskRetried':
      return { status: 'adding', image: state.image, ...(event.data.opId === undefined ? {} : { fileOp: event.data.opId }) };
    case 'StorageImageResizeRequested':
      return { ...okOf(state), operation: { type: 'resize', ...event.data, since: event.time } };
    case 'StorageImageResized':
      return withoutOperation({ ...state, image: { ...state.image, sizeMb: event.data.toMb } } as StorageImageState);
    case 'StorageImageResizeFailed':
      return withoutOperation(state);
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
};

/** The ok state an attachment or operation event continues (what it does not change, kept). */
const okOf = (state: Exclude<StorageImageState, { status: 'none' }>): Extract<StorageImageState, { status: 'ok' }> =>
  state.status === 'ok' ? state : { status: 'ok', image: state.image, attachment: null };

const withoutOperation = (state: StorageImageState): StorageImageState => {
  if (state.status !== 'ok' || !state.operation) return state;
  const { operation: _ended, ...rest } = state;
  return rest;
};

export const fold = (events: readonly NewEvent[], from: StorageImageState = initialState()): StorageImageState => events.reduce(evolve, from);
