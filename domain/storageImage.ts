/**
 * The StorageImage aggregate, as a decider: `decide(command, state) -> events`,
 * `evolve(state, event) -> state`, `initialState`. No I/O: everything the rules
 * need (the caller, the clock, the VM, the quota use) comes in with the command.
 */
import { isDiskController, isFilesystem, isLiveAttachable, type DiskController, type Filesystem, type ImageStateName } from './catalog';
import { DomainError, fail } from './errors';

// ---------------------------------------------------------------------------
// Who causes an event

export type Actor =
  | { kind: 'user'; userId: number }
  | { kind: 'admin'; userId: number }
  | { kind: 'portal'; userId: number } // a trusted portal service acting for a user
  | { kind: 'system'; reason: SystemReason };

export type SystemReason = 'vm-stopped' | 'disk-file' | 'reconciled';

/** As stored on an event: `{kind, userId?, reason?}`. */
export type Cause = { kind: Actor['kind']; userId?: number; reason?: string };

export const causeOf = (actor: Actor): Cause =>
  actor.kind === 'system' ? { kind: 'system', reason: actor.reason } : { kind: actor.kind, userId: actor.userId };

// ---------------------------------------------------------------------------
// Events

export type AttachMode = 'hot' | 'boot';

export type StorageImageEventData = {
  StorageImageCreated: {
    imageId: number;
    userId: number;
    name: string;
    description: string;
    diskController: DiskController;
    filesystem: Filesystem;
    sizeMb: number;
  };
  /**
   * The disk file is made, on that storage (an id from the configuration). Events
   * written before there were several storages have no `storage`: they mean `default`.
   */
  StorageImageDiskReady: { storage?: string };
  StorageImageDiskFailed: { reason: string };
  StorageImageEdited: { name?: string; description?: string; diskController?: DiskController };
  /** A hot attach started: the device is claimed, virsh is about to run. */
  StorageImageAttachRequested: { vmId: number; diskDev: string };
  StorageImageAttached: { vmId: number; diskDev: string; mode: AttachMode };
  StorageImageAttachFailed: { vmId: number; diskDev: string; reason: string };
  StorageImageDetached: { vmId: number; diskDev: string };
  StorageImageRevoked: Record<string, never>;
};

export type StorageImageEventType = keyof StorageImageEventData;

/** What `decide` returns: the event without the store's envelope (stream id, version). */
export type NewEvent = {
  [T in StorageImageEventType]: { type: T; data: StorageImageEventData[T]; time: string; cause: Cause };
}[StorageImageEventType];

/** An event as stored: with its stream id and version. */
export type StorageImageEvent = NewEvent & { streamId: string; version: number };

export const streamIdOf = (imageId: number): string => `image-${imageId}`;

// ---------------------------------------------------------------------------
// State: a discriminated union on `status`, so impossible states cannot be written.

export type ImageFacts = {
  imageId: number;
  userId: number;
  name: string;
  description: string;
  diskController: DiskController;
  filesystem: Filesystem;
  sizeMb: number;
  creationDate: string;
  /** The storage the disk file is on, from DiskReady; absent before (and for old images): `default`. */
  storage?: string;
};

export type Attachment =
  | { phase: 'attaching'; vmId: number; diskDev: string; since: string }
  | { phase: 'attached'; vmId: number; diskDev: string; mode: AttachMode; since: string };

export type StorageImageState =
  | { status: 'none' }
  | { status: 'adding'; image: ImageFacts }
  | { status: 'failed'; image: ImageFacts; reason: string }
  | { status: 'ok'; image: ImageFacts; attachment: Attachment | null }
  | { status: 'locked'; image: ImageFacts }; // revoked

export const initialState = (): StorageImageState => ({ status: 'none' });

/** CC1's state name of an image (`locked` is a revoked image). */
export const cc1StateOf = (state: Exclude<StorageImageState, { status: 'none' }>): ImageStateName => state.status;

// ---------------------------------------------------------------------------
// Commands

/** A VM as the VM directory knows it. */
export type VmView = { vmId: number; userId: number; running: boolean };

export type StorageImageCommand =
  | {
      type: 'CreateStorageImage';
      imageId: number;
      name: string;
      description: string;
      diskController: DiskController;
      filesystem: Filesystem;
      sizeMb: number;
      /** The owner's storage quota and what their live images use now. */
      quota: { limitMb: number; usedMb: number };
    }
  | { type: 'MarkDiskReady'; storage: string }
  | { type: 'MarkDiskFailed'; reason: string }
  | { type: 'EditStorageImage'; name?: string; description?: string; diskController?: DiskController }
  | { type: 'RequestHotAttach'; vm: VmView | undefined; diskDev: string }
  | { type: 'ConfirmAttach'; vmId: number; diskDev: string }
  | { type: 'FailAttach'; vmId: number; diskDev: string; reason: string }
  /** A VM being created: recorded as attached, the disk goes into the domain XML at start. */
  | { type: 'AttachAtBoot'; vm: VmView | undefined; vmId: number; diskDev: string }
  | { type: 'Detach'; vmId?: number }
  | { type: 'DetachStoppedVm'; vmId: number }
  | { type: 'RevokeStorageImage' };

export type CommandContext = { actor: Actor; now: string };

// ---------------------------------------------------------------------------
// Rules on values

export const NAME_MAX = 45;
export const DESCRIPTION_MAX = 512;
export const SIZE_MIN_MB = 1;
export const SIZE_MAX_MB = 2_000_000;
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

const mustExist = (state: StorageImageState): Existing =>
  state.status === 'none' ? fail('image_get', 'No such storage image.') : state;

/**
 * Storage images are private: only the owner may act (a portal acts for a user, so
 * it counts as that user); an admin or the system may act on any.
 */
const checkAccess = (state: Existing, actor: Actor): void => {
  if ((actor.kind === 'user' || actor.kind === 'portal') && actor.userId !== state.image.userId) {
    fail('image_permission', 'This storage image belongs to another user.');
  }
};

/** A revoked image is gone for everyone but the audit trail. */
const mustBeLive = (state: Existing, code: 'image_get' | 'image_edit' | 'storage_image_attach'): Exclude<Existing, { status: 'locked' }> =>
  state.status === 'locked' ? fail(code === 'image_get' ? 'image_get' : code, 'The storage image was deleted.') : state;

const event = <T extends StorageImageEventType>(type: T, data: StorageImageEventData[T], ctx: CommandContext): NewEvent =>
  ({ type, data, time: ctx.now, cause: causeOf(ctx.actor) }) as NewEvent;

const create = (command: Extract<StorageImageCommand, { type: 'CreateStorageImage' }>, state: StorageImageState, ctx: CommandContext): NewEvent[] => {
  if (state.status !== 'none') fail('concurrency_conflict', `Storage image ${command.imageId} exists already.`);
  if (ctx.actor.kind === 'system') fail('validation', 'The system does not create images.');
  const userId = (ctx.actor as { userId: number }).userId;
  checkName(command.name);
  checkDescription(command.description);
  checkController(command.diskController);
  if (!isFilesystem(command.filesystem)) fail('validation', `unknown filesystem ${JSON.stringify(command.filesystem)}.`);
  if (!Number.isSafeInteger(command.sizeMb) || command.sizeMb < SIZE_MIN_MB || command.sizeMb > SIZE_MAX_MB) {
    fail('image_invalid_size', `size must be a whole number of MB from ${SIZE_MIN_MB} to ${SIZE_MAX_MB}.`);
  }
  const minimum = MIN_SIZE_MB_BY_FILESYSTEM[command.filesystem] ?? SIZE_MIN_MB;
  if (command.sizeMb < minimum) fail('image_invalid_size', `A ${command.filesystem} disk needs at least ${minimum} MB.`);
  if (command.quota.usedMb + command.sizeMb > command.quota.limitMb) {
    fail(
      'user_storage_limit',
      `Storage quota exceeded: ${command.quota.usedMb} MB used of ${command.quota.limitMb} MB, ${command.sizeMb} MB asked.`,
    );
  }
  return [
    event(
      'StorageImageCreated',
      {
        imageId: command.imageId,
        userId,
        name: command.name,
        description: command.description,
        diskController: command.diskController,
        filesystem: command.filesystem,
        sizeMb: command.sizeMb,
      },
      ctx,
    ),
  ];
};

/** The disk file was made (or failed) on the storage host. Repeats change nothing. */
const markDisk = (
  command: Extract<StorageImageCommand, { type: 'MarkDiskReady' | 'MarkDiskFailed' }>,
  state: Existing,
  ctx: CommandContext,
): NewEvent[] => {
  if (state.status !== 'adding') return [];
  return command.type === 'MarkDiskReady'
    ? [event('StorageImageDiskReady', { storage: command.storage }, ctx)]
    : [event('StorageImageDiskFailed', { reason: command.reason }, ctx)];
};

const edit = (command: Extract<StorageImageCommand, { type: 'EditStorageImage' }>, state: Existing, ctx: CommandContext): NewEvent[] => {
  const live = mustBeLive(state, 'image_edit');
  if (live.status !== 'ok' && live.status !== 'adding') fail('image_edit', `A storage image in state ${live.status} cannot be edited.`);
  const changes: StorageImageEventData['StorageImageEdited'] = {};
  if (command.name !== undefined) {
    checkName(command.name);
    if (command.name !== live.image.name) changes.name = command.name;
  }
  if (command.description !== undefined) {
    checkDescription(command.description);
    if (command.description !== live.image.description) changes.description = command.description;
  }
  if (command.diskController !== undefined) {
    checkController(command.diskController);
    if (command.diskController !== live.image.diskController) {
      if (live.status === 'ok' && live.attachment) {
        fail('image_attached', 'Detach the storage image before changing its disk controller.');
      }
      changes.diskController = command.diskController;
    }
  }
  return Object.keys(changes).length === 0 ? [] : [event('StorageImageEdited', changes, ctx)];
};

/** The checks both attach routes share: image usable and free, VM the owner's. */
const attachable = (state: Existing, vm: VmView | undefined, vmId: number): Extract<Existing, { status: 'ok' }> => {
  const live = mustBeLive(state, 'storage_image_attach');
  if (live.status === 'ok' && live.attachment) {
    const where = live.attachment.vmId === vmId ? 'this VM' : 'another VM';
    fail('image_attached', `The storage image is ${live.attachment.phase === 'attaching' ? 'being attached' : 'attached'} to ${where}.`);
  }
  if (live.status !== 'ok') fail('storage_image_attach', `A storage image in state ${live.status} cannot be attached.`);
  if (vm && vm.userId !== live.image.userId) fail('vm_get', `VM ${vmId} does not belong to the owner of the storage image.`);
  return live as Extract<Existing, { status: 'ok' }>;
};

const requestHotAttach = (command: Extract<StorageImageCommand, { type: 'RequestHotAttach' }>, state: Existing, ctx: CommandContext): NewEvent[] => {
  const vmId = command.vm?.vmId ?? -1;
  if (!command.vm) fail('vm_get', 'No such VM.');
  const live = attachable(state, command.vm, vmId);
  if (!command.vm!.running) {
    fail('storage_image_attach', `VM ${vmId} is not running; attach disks of a VM being created with POST /vms/${vmId}/disks.`);
  }
  if (!isLiveAttachable(live.image.diskController)) {
    fail(
      'storage_image_attach',
      `A ${live.image.diskController} disk cannot be plugged into a running VM; only virtio and usb can. Attach it while the VM is being created.`,
    );
  }
  return [event('StorageImageAttachRequested', { vmId, diskDev: command.diskDev }, ctx)];
};

const isAttachingTo = (state: Existing, vmId: number, diskDev: string): boolean =>
  state.status === 'ok' && state.attachment?.phase === 'attaching' && state.attachment.vmId === vmId && state.attachment.diskDev === diskDev;

const isAttachedTo = (state: Existing, vmId: number, diskDev: string): boolean =>
  state.status === 'ok' && state.attachment?.phase === 'attached' && state.attachment.vmId === vmId && state.attachment.diskDev === diskDev;

/** The hypervisor really attached the disk. A repeat changes nothing. */
const confirmAttach = (command: Extract<StorageImageCommand, { type: 'ConfirmAttach' }>, state: Existing, ctx: CommandContext): NewEvent[] => {
  if (isAttachedTo(state, command.vmId, command.diskDev)) return [];
  if (!isAttachingTo(state, command.vmId, command.diskDev)) {
    fail('storage_image_attach', 'No attach of this storage image to that VM device is in progress.');
  }
  return [event('StorageImageAttached', { vmId: command.vmId, diskDev: command.diskDev, mode: 'hot' }, ctx)];
};

const failAttach = (command: Extract<StorageImageCommand, { type: 'FailAttach' }>, state: Existing, ctx: CommandContext): NewEvent[] => {
  if (!isAttachingTo(state, command.vmId, command.diskDev)) return [];
  return [event('StorageImageAttachFailed', { vmId: command.vmId, diskDev: command.diskDev, reason: command.reason }, ctx)];
};

const attachAtBoot = (command: Extract<StorageImageCommand, { type: 'AttachAtBoot' }>, state: Existing, ctx: CommandContext): NewEvent[] => {
  if (isAttachedTo(state, command.vmId, command.diskDev)) return [];
  attachable(state, command.vm, command.vmId);
  if (command.vm?.running) {
    fail('storage_image_attach', `VM ${command.vmId} is running already; use the hot attach of a virtio or usb disk.`);
  }
  return [event('StorageImageAttached', { vmId: command.vmId, diskDev: command.diskDev, mode: 'boot' }, ctx)];
};

const detach = (command: Extract<StorageImageCommand, { type: 'Detach' }>, state: Existing, ctx: CommandContext): NewEvent[] => {
  const attachment = state.status === 'ok' ? state.attachment : null;
  if (!attachment) fail('storage_image_detach', 'The storage image is not attached.');
  if (command.vmId !== undefined && attachment!.vmId !== command.vmId) {
    fail('storage_image_detach', `The storage image is not attached to VM ${command.vmId}.`);
  }
  if (attachment!.phase === 'attaching') fail('storage_image_detach', 'An attach of this storage image is in progress; try again shortly.');
  return [event('StorageImageDetached', { vmId: attachment!.vmId, diskDev: attachment!.diskDev }, ctx)];
};

/** The VM is gone: detach in the records only. Repeats and other VMs change nothing. */
const detachStoppedVm = (command: Extract<StorageImageCommand, { type: 'DetachStoppedVm' }>, state: Existing, ctx: CommandContext): NewEvent[] => {
  const attachment = state.status === 'ok' ? state.attachment : null;
  if (!attachment || attachment.vmId !== command.vmId) return [];
  if (attachment.phase === 'attaching') {
    return [event('StorageImageAttachFailed', { vmId: attachment.vmId, diskDev: attachment.diskDev, reason: 'VM stopped during attach' }, ctx)];
  }
  return [event('StorageImageDetached', { vmId: attachment.vmId, diskDev: attachment.diskDev }, ctx)];
};

const revoke = (state: Existing, ctx: CommandContext): NewEvent[] => {
  if (state.status === 'locked') return []; // deleted already: a retry is not an error
  if (state.status === 'ok' && state.attachment) fail('image_attached', 'Detach the storage image before deleting it.');
  if (state.status !== 'ok') fail('image_delete', `A storage image in state ${state.status} cannot be deleted.`);
  return [event('StorageImageRevoked', {}, ctx)];
};

export const decide = (command: StorageImageCommand, state: StorageImageState, ctx: CommandContext): NewEvent[] => {
  if (command.type === 'CreateStorageImage') return create(command, state, ctx);
  const existing = mustExist(state);
  checkAccess(existing, ctx.actor);
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
    default: {
      const unreachable: never = command;
      throw new DomainError('validation', `unknown command ${JSON.stringify(unreachable)}`);
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
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
};

export const fold = (events: readonly NewEvent[], from: StorageImageState = initialState()): StorageImageState => events.reduce(evolve, from);
