/**
 * The StorageImage use cases. Each is: check who asks, load, decide, and where the
 * world must change (virsh, the disk file), order the writes so that a crash at any
 * point leaves a state the reconciler repairs (docs/event-store.md, crash points).
 */
import { isLiveAttachable, type DiskController, type Filesystem } from '../domain/catalog';
import { allocateDevice } from '../domain/devices';
import { DomainError, fail } from '../domain/errors';
import {
  decide,
  initialState,
  streamIdOf,
  type Actor,
  type CommandContext,
  type StorageImageState,
  type VmView,
} from '../domain/storageImage';
import { handleCommand, type CommandDeps } from './commandHandling';
import { HostCommandError, type Hypervisor, type StorageHost } from './ports';
import { chooseStorage, type StorageRoom } from './storageChoice';
import { FOREIGN_DISK, type IdAllocator, type ImageView, type Page, type QuotaLedger, type StoredEvent, type VmDirectory, type VmRecord, type VmStateChange } from './storePorts';
import { toImageView } from './views';

export interface ServiceConfig {
  /** Storage quota per user in MB, when the user has no quota of their own. */
  defaultQuotaMb: number;
  maxDisksPerVm: number;
}

export interface Metrics {
  count(name: string, dimensions?: Record<string, string>): void;
}

export interface ServiceDeps extends CommandDeps {
  vms: VmDirectory;
  quota: QuotaLedger;
  ids: IdAllocator;
  hypervisor: Hypervisor;
  storage: StorageHost;
  config: ServiceConfig;
  clock?: () => string;
  metrics?: Metrics;
}

const now = (deps: ServiceDeps): string => (deps.clock ?? (() => new Date().toISOString()))();
const contextOf = (deps: ServiceDeps, actor: Actor): CommandContext => ({ actor, now: now(deps) });

/** The view of a state that exists (commands on a missing image fail before this). */
const viewOf = (state: StorageImageState, version: number): ImageView => {
  const view = toImageView(state, version);
  if (!view) throw new DomainError('image_get', 'No such storage image.');
  return view;
};

// ---------------------------------------------------------------------------
// Reads

/** Exact: reads the stream head, so a write acknowledged before is always seen. */
export const getImage = async (deps: ServiceDeps, imageId: number, actor: Actor): Promise<ImageView> => {
  const { version, state } = await deps.events.load(streamIdOf(imageId));
  if (state.status === 'none') fail('image_get', 'No such storage image.');
  checkReadAccess(state, actor);
  return viewOf(state, version);
};

export const getHistory = async (deps: ServiceDeps, imageId: number, actor: Actor): Promise<StoredEvent[]> => {
  const events = await deps.events.readStream(streamIdOf(imageId));
  const last = events[events.length - 1];
  if (!last) fail('image_get', 'No such storage image.');
  checkReadAccess(last!.stateAfter, actor);
  return events;
};

const checkReadAccess = (state: StorageImageState, actor: Actor): void => {
  if (state.status === 'none') return;
  const asks = actor.kind === 'user' || actor.kind === 'portal' ? actor.userId : undefined;
  if (asks !== undefined && asks !== state.image.userId) fail('image_permission', 'This storage image belongs to another user.');
  // A revoked image is deleted for its owner; admins still see it.
  if (state.status === 'locked' && actor.kind !== 'admin' && actor.kind !== 'system') fail('image_get', 'No such storage image.');
};

export const listImages = (
  deps: ServiceDeps,
  userId: number,
  page: { limit: number; nextToken?: string },
): Promise<Page<ImageView>> => deps.readModel.listByOwner(userId, { ...page, includeRevoked: false });

// ---------------------------------------------------------------------------
// Create, edit, revoke

export interface CreateInput {
  name: string;
  description: string;
  diskController: DiskController;
  filesystem: Filesystem;
  sizeMb: number;
}

/**
 * Writes: the quota reservation, then Created. A crash between them leaves quota
 * reserved for an image that does not exist; the reconciler resets the ledger from
 * the log. The disk file is made afterwards by the disk-file reaction.
 */
export const createImage = async (deps: ServiceDeps, input: CreateInput, actor: Actor & { userId: number }): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  const limitMb = deps.config.defaultQuotaMb;
  // Validate everything the decider checks before taking an id or quota.
  decide({ type: 'CreateStorageImage', imageId: 0, ...input, quota: { limitMb, usedMb: 0 } }, { status: 'none' }, ctx);
  const imageId = await deps.ids.nextImageId();
  const reserved = await deps.quota.reserve(actor.userId, imageId, input.sizeMb, limitMb);
  if (!reserved.ok) {
    fail('user_storage_limit', `Storage quota exceeded: ${reserved.usedMb} MB used of ${limitMb} MB, ${input.sizeMb} MB asked.`);
  }
  try {
    // The id was just handed out, so the stream is empty: no load. (Were it not, the
    // conditional append at version 1 would fail and the retry would load and refuse.)
    const loaded = { version: 0, state: initialState() };
    const result = await handleCommand(deps, imageId, { type: 'CreateStorageImage', imageId, ...input, quota: { limitMb, usedMb: 0 } }, ctx, { loaded });
    return viewOf(result.state, result.version);
  } catch (error) {
    await deps.quota.release(actor.userId, imageId, input.sizeMb).catch(() => undefined);
    throw error;
  }
};

export const editImage = async (
  deps: ServiceDeps,
  imageId: number,
  changes: { name?: string; description?: string; diskController?: DiskController },
  actor: Actor,
): Promise<ImageView> => {
  const result = await handleCommand(deps, imageId, { type: 'EditStorageImage', ...changes }, contextOf(deps, actor));
  return viewOf(result.state, result.version);
};

/** Revoked, then the quota is released; the file is removed by the disk-file reaction. */
export const revokeImage = async (deps: ServiceDeps, imageId: number, actor: Actor): Promise<ImageView> => {
  const result = await handleCommand(deps, imageId, { type: 'RevokeStorageImage' }, contextOf(deps, actor));
  if (result.state.status === 'locked') await deps.quota.release(result.state.image.userId, imageId, result.state.image.sizeMb);
  return viewOf(result.state, result.version);
};

// ---------------------------------------------------------------------------
// Attach

const vmViewOf = (vm: VmRecord | undefined): VmView | undefined =>
  vm && vm.state ? { vmId: vm.vmId, userId: vm.userId, running: vm.state === 'running' } : undefined;

/**
 * Claims a device of the VM for the image: the first free one from the VM's own
 * record, again on a lost race. The VM item's conditional write is what makes a
 * device go to one image only.
 */
const claimDevice = async (
  deps: ServiceDeps,
  vmId: number,
  ownerId: number,
  imageId: number,
  bus: DiskController,
  vm: VmRecord | undefined,
): Promise<string> => {
  for (let attempt = 0; attempt < 40; attempt++) {
    const devices = vm?.devices ?? {};
    const held = Object.entries(devices).find(([, claim]) => claim.imageId === imageId);
    const dev = held ? held[0] : allocateDevice(bus, Object.keys(devices), deps.config.maxDisksPerVm);
    const result = await deps.vms.claimDevice(vmId, ownerId, dev, imageId, deps.config.maxDisksPerVm, now(deps));
    if (result.ok) return dev;
    if (result.reason === 'other_owner') fail('vm_get', `VM ${vmId} belongs to another user.`);
    if (result.reason === 'full') fail('storage_image_attach', `The VM already has ${deps.config.maxDisksPerVm} storage disks.`);
    vm = await deps.vms.get(vmId); // taken: someone got there first
  }
  return fail('storage_image_attach', 'Too many concurrent attaches to this VM; try again.');
};

/**
 * Hot attach to a running VM. Writes, in order: device claim, AttachRequested,
 * virsh attach-disk (confirmed by domblklist), Attached. A failure or timeout of
 * virsh appends AttachFailed and frees the device; a crash anywhere is repaired by
 * the reconciler, which reads the host's domblklist.
 */
export const attachImage = async (deps: ServiceDeps, imageId: number, vmId: number, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  const streamId = streamIdOf(imageId);
  for (let attempt = 1; ; attempt++) {
    const [loaded, vm] = await Promise.all([deps.events.load(streamId), deps.vms.get(vmId)]);
    const { state } = loaded;
    // The rules first, so nothing is claimed for a refused request.
    if (vm && state.status !== 'none' && (actor.kind === 'user' || actor.kind === 'portal') && vm.userId !== actor.userId) {
      fail('vm_get', 'No such VM.');
    }
    decide({ type: 'RequestHotAttach', vm: vmViewOf(vm), diskDev: '-' }, state, ctx);
    if (state.status !== 'ok' || !vm?.hostId || !vm.domain) return fail('vm_get', 'The VM has no known host.');
    const { image } = state;

    const diskDev = await claimDevice(deps, vmId, image.userId, imageId, image.diskController, vm);
    let requested;
    try {
      // On a lost race this is decided again on a fresh load: if another attach won, it refuses.
      // The view does not change (no Attached yet), so no inline projection.
      requested = await handleCommand(deps, imageId, { type: 'RequestHotAttach', vm: vmViewOf(vm), diskDev }, ctx, { loaded, projectInline: false });
    } catch (error) {
      await deps.vms.releaseDevice(vmId, diskDev, imageId);
      throw error;
    }

    const file = deps.storage.pathOf({ userId: image.userId, imageId, storage: image.storage });
    try {
      await deps.hypervisor.attachDisk({ hostId: vm.hostId, domain: vm.domain, file, dev: diskDev, bus: image.diskController });
    } catch (error) {
      await abandonAttach(deps, imageId, vmId, diskDev, error, vm);
      // A disk this service did not attach may sit on that device: hold it, take the next.
      if (attempt === 1 && error instanceof HostCommandError && error.kind === 'failed' && (await heldByForeignDisk(deps, vm, diskDev))) continue;
      throw hostError(error, 'storage_image_attach');
    }
    const result = await handleCommand(deps, imageId, { type: 'ConfirmAttach', vmId, diskDev }, contextOf(deps, actor), { loaded: requested });
    deps.metrics?.count('AttachSucceeded', { mode: 'hot' });
    return viewOf(result.state, result.version);
  }
};

/**
 * Whether the host shows, on `dev`, a disk that is not one of this service's images;
 * if so, that device is claimed for it (FOREIGN_DISK) so no attach picks it again.
 */
const heldByForeignDisk = async (deps: ServiceDeps, vm: VmRecord, dev: string): Promise<boolean> => {
  const disks = await deps.hypervisor.listDisks({ hostId: vm.hostId!, domain: vm.domain! }).catch(() => []);
  const disk = disks.find((d) => d.dev === dev);
  if (!disk || isServiceDisk(deps, disk.source)) return false;
  const claimed = await deps.vms.claimDevice(vm.vmId, vm.userId, dev, FOREIGN_DISK, Number.MAX_SAFE_INTEGER, now(deps));
  deps.logger.warn('a disk this service did not attach holds a device: claimed for it', { vmId: vm.vmId, dev, source: disk.source });
  return claimed.ok;
};

/** `<a storage's path>/<user id>/<image id>` -> the image id, for disk files this service made (on any storage). */
export const imageIdOfSource = (deps: Pick<ServiceDeps, 'storage'>, source: string): number | undefined => {
  const m = /\/([0-9]+)\/([0-9]+)$/.exec(source);
  if (!m) return undefined;
  const [userId, imageId] = [Number(m[1]), Number(m[2])];
  return deps.storage.storageIds.some((storage) => deps.storage.pathOf({ userId, imageId, storage }) === source) ? imageId : undefined;
};

const isServiceDisk = (deps: ServiceDeps, source: string): boolean => imageIdOfSource(deps, source) !== undefined;

/** virsh failed or did not answer: the image ends detached and the device free. */
const abandonAttach = async (deps: ServiceDeps, imageId: number, vmId: number, diskDev: string, error: unknown, vm: VmRecord): Promise<void> => {
  const kind = error instanceof HostCommandError ? error.kind : 'failed';
  deps.logger.warn('hypervisor attach failed', { imageId, vmId, diskDev, kind, detail: (error as HostCommandError).detail, error: String(error) });
  deps.metrics?.count('AttachFailed', { kind });
  if (kind === 'timeout') {
    // The command may still complete on the host: undo it, or leave it to the reconciler.
    await deps.hypervisor.detachDisk({ hostId: vm.hostId!, domain: vm.domain!, dev: diskDev }).catch(() => undefined);
  }
  await handleCommand(deps, imageId, { type: 'FailAttach', vmId, diskDev, reason: `hypervisor: ${kind}` }, contextOf(deps, { kind: 'system', reason: 'reconciled' }));
  await deps.vms.releaseDevice(vmId, diskDev, imageId);
};

/** Maps a host failure to what the user sees: 409 with the CC1 code, or 503. */
const hostError = (error: unknown, code: 'storage_image_attach' | 'storage_image_detach'): Error => {
  if (!(error instanceof HostCommandError)) return error as Error;
  const verb = code === 'storage_image_attach' ? 'attach' : 'detach';
  switch (error.kind) {
    case 'timeout':
      return new DomainError('hypervisor_unavailable', `The hypervisor did not answer in time; the disk was not ${verb}ed.`);
    case 'unreachable':
      return new DomainError('hypervisor_unavailable', `The VM's hypervisor cannot be reached; the disk was not ${verb}ed.`);
    case 'unknown_domain':
      return new DomainError(code, `The VM is not running on its hypervisor; the disk was not ${verb}ed.`);
    case 'failed':
      return new DomainError(code, `The hypervisor refused to ${verb} the disk.`);
  }
};

/**
 * Boot-time attach (CC1 did it while creating a VM): for a VM that is not running,
 * records each image as attached with a device chosen; no virsh call. The disks go
 * into the domain XML at start (see bootDiskXml). Retrying the same request reuses
 * the devices already given.
 */
export const attachAtBoot = async (deps: ServiceDeps, vmId: number, userId: number, imageIds: number[], actor: Actor): Promise<ImageView[]> => {
  // The images act as the VM's owner: a portal or admin asks for that user.
  const forUser: Actor = actor.kind === 'admin' ? actor : { kind: 'portal', userId };
  const ctx = contextOf(deps, forUser);
  const vm = await deps.vms.get(vmId);
  if (vm && vm.userId !== userId) fail('vm_get', `VM ${vmId} belongs to another user.`);
  // Every image is checked before any is claimed: a refusal leaves nothing behind.
  const loaded = await Promise.all(imageIds.map((imageId) => deps.events.load(streamIdOf(imageId))));
  loaded.forEach(({ state }, i) => {
    if (state.status !== 'none' && state.image.userId !== userId) fail('image_permission', `Storage image ${imageIds[i]} belongs to another user.`);
    const here = state.status === 'ok' && state.attachment?.phase === 'attached' && state.attachment.vmId === vmId ? state.attachment.diskDev : '-';
    decide({ type: 'AttachAtBoot', vm: vmViewOf(vm), vmId, diskDev: here }, state, ctx);
    if (state.status !== 'ok') fail('storage_image_attach', `Storage image ${imageIds[i]} is not ready.`);
  });
  const views: ImageView[] = [];
  let current = vm;
  for (const [i, imageId] of imageIds.entries()) {
    const { state } = loaded[i]!;
    if (state.status !== 'ok') continue; // checked above
    const attachedHere = state.attachment?.phase === 'attached' && state.attachment.vmId === vmId;
    const diskDev = await claimDevice(deps, vmId, userId, imageId, state.image.diskController, current);
    try {
      const result = await handleCommand(deps, imageId, { type: 'AttachAtBoot', vm: vmViewOf(vm), vmId, diskDev }, ctx);
      views.push(viewOf(result.state, result.version));
    } catch (error) {
      if (!attachedHere) await deps.vms.releaseDevice(vmId, diskDev, imageId);
      throw error;
    }
    current = await deps.vms.get(vmId);
  }
  deps.metrics?.count('AttachSucceeded', { mode: 'boot' });
  return views;
};

const xmlAttr = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The `<disk>` elements of a VM's storage images, for its domain XML. */
export const bootDiskXml = async (deps: ServiceDeps, vmId: number, actor: Actor): Promise<{ imageId: number; diskDev: string; xml: string }[]> => {
  const vm = await deps.vms.get(vmId);
  if (!vm) return fail('vm_get', 'No such VM.');
  if (actor.kind === 'user' && actor.userId !== vm.userId) fail('vm_get', 'No such VM.');
  const disks = [];
  for (const [diskDev, claim] of Object.entries(vm.devices).sort(([a], [b]) => a.localeCompare(b))) {
    const { state } = await deps.events.load(streamIdOf(claim.imageId));
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

// ---------------------------------------------------------------------------
// Detach

/**
 * Writes, in order: virsh detach-disk (confirmed by domblklist) when the VM runs,
 * Detached, then the device claim is freed. A crash after virsh leaves the records
 * attached and the host detached; the reconciler appends the missing Detached.
 */
export const detachImage = async (deps: ServiceDeps, imageId: number, vmId: number | undefined, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  const loaded = await deps.events.load(streamIdOf(imageId));
  const { state } = loaded;
  decide({ type: 'Detach', vmId }, state, ctx); // the rules, before touching the host
  if (state.status !== 'ok' || state.attachment?.phase !== 'attached') return fail('storage_image_detach', 'The storage image is not attached.');
  const { diskDev } = state.attachment;
  const onVm = state.attachment.vmId;
  const vm = await deps.vms.get(onVm);
  if (vm?.state === 'running' && vm.hostId && vm.domain) {
    if (!isLiveAttachable(state.image.diskController)) {
      fail('storage_image_detach', `A ${state.image.diskController} disk cannot be unplugged from a running VM; stop the VM first.`);
    }
    try {
      await deps.hypervisor.detachDisk({ hostId: vm.hostId, domain: vm.domain, dev: diskDev });
    } catch (error) {
      // The domain is gone from its host: the disk is certainly not attached there.
      if (!(error instanceof HostCommandError && error.kind === 'unknown_domain')) {
        deps.logger.warn('hypervisor detach failed', { imageId, vmId: onVm, diskDev, error: String(error), detail: (error as HostCommandError).detail });
        deps.metrics?.count('DetachFailed', { kind: error instanceof HostCommandError ? error.kind : 'failed' });
        throw hostError(error, 'storage_image_detach');
      }
    }
  }
  const result = await handleCommand(deps, imageId, { type: 'Detach', vmId: onVm }, ctx, { loaded });
  await deps.vms.releaseDevice(onVm, diskDev, imageId);
  deps.metrics?.count('DetachSucceeded');
  return viewOf(result.state, result.version);
};

// ---------------------------------------------------------------------------
// VM state events

/** `migrated` and `saved` stops keep the disks: the VM lives on elsewhere or later. */
const KEEPS_DISKS = new Set(['migrated', 'saved']);

/**
 * Records the VM's state; on a stop, detaches its images in the records only (the
 * domain is gone; no virsh call). A redelivered stop finishes what a first delivery
 * left undone; a stale one (older than the newest applied) changes nothing.
 */
export const onVmStateChange = async (
  deps: ServiceDeps,
  change: VmStateChange,
  reason?: string,
): Promise<{ applied: boolean; detached: number[] }> => {
  // After a migration the old host reports a stop, possibly later than the new host
  // reported the start: a stop from a host the VM no longer runs on is not the VM's.
  const known = change.state === 'stopped' ? await deps.vms.get(change.vmId) : undefined;
  if (known?.state === 'running' && known.hostId && known.hostId !== change.hostId) {
    deps.logger.info('stop from a host the VM has left: ignored', { vmId: change.vmId, from: change.hostId, runsOn: known.hostId });
    return { applied: false, detached: [] };
  }
  const { applied, record } = await deps.vms.recordState(change);
  const current = applied || (record.stateTime === change.time && record.state === change.state);
  if (!current || change.state !== 'stopped' || (reason && KEEPS_DISKS.has(reason))) return { applied, detached: [] };
  const detached: number[] = [];
  const ctx = contextOf(deps, { kind: 'system', reason: 'vm-stopped' });
  for (const [diskDev, claim] of Object.entries(record.devices)) {
    if (claim.imageId !== FOREIGN_DISK) {
      const result = await handleCommand(deps, claim.imageId, { type: 'DetachStoppedVm', vmId: change.vmId }, ctx);
      if (result.appended) detached.push(claim.imageId);
    }
    await deps.vms.releaseDevice(change.vmId, diskDev, claim.imageId);
  }
  if (detached.length) deps.metrics?.count('AutoDetached');
  return { applied, detached };
};

// ---------------------------------------------------------------------------
// Disk files (a reaction to the event stream)

/**
 * On Created, picks the storage (the emptiest that can hold the disk), makes the disk
 * file there and marks the image ready on it (or failed); on Revoked, removes the file
 * from the image's storage. Both steps are idempotent, so stream redelivery is
 * harmless. When no storage host can be reached, it throws and the stream retries.
 */
export const onStoredEventForDiskFiles = async (deps: ServiceDeps, event: StoredEvent): Promise<void> => {
  const system = (): CommandContext => contextOf(deps, { kind: 'system', reason: 'disk-file' });
  if (event.type === 'StorageImageCreated') {
    const { imageId, userId, sizeMb, filesystem } = event.data;
    const { state } = await deps.events.load(event.streamId);
    if (state.status !== 'adding') return; // done already
    const choice = chooseStorage(await roomsOf(deps, imageId), sizeMb);
    if (!choice.ok) {
      if (choice.why === 'unanswered') throw new HostCommandError('unreachable', `image ${imageId}: ${choice.reason}`);
      deps.logger.error('no storage can hold the disk file', { imageId, sizeMb, reason: choice.reason });
      await handleCommand(deps, imageId, { type: 'MarkDiskFailed', reason: choice.reason }, system());
      return;
    }
    const { storage } = choice;
    try {
      await deps.storage.createDiskFile({ imageId, userId, sizeMb, filesystem, storage });
    } catch (error) {
      if (error instanceof HostCommandError && error.kind === 'failed') {
        deps.logger.error('disk file creation failed', { imageId, storage, detail: error.detail });
        await handleCommand(deps, imageId, { type: 'MarkDiskFailed', reason: 'the storage host could not make the disk file' }, system());
        return;
      }
      throw error;
    }
    await handleCommand(deps, imageId, { type: 'MarkDiskReady', storage }, system());
  } else if (event.type === 'StorageImageRevoked') {
    const image = event.stateAfter.status === 'none' ? undefined : event.stateAfter.image;
    if (image) await deps.storage.deleteDiskFile({ userId: image.userId, imageId: image.imageId, storage: image.storage });
  }
};

/** Each storage's free space, asked in parallel; one that does not answer is skipped (logged). */
const roomsOf = (deps: ServiceDeps, imageId: number): Promise<StorageRoom[]> =>
  Promise.all(
    deps.storage.storageIds.map(async (id) => {
      try {
        return { id, freeMb: await deps.storage.freeSpaceMb(id) };
      } catch (error) {
        deps.logger.warn('storage skipped: its free space could not be read', {
          imageId,
          storage: id,
          error: String(error),
          detail: (error as HostCommandError).detail,
        });
        return { id, freeMb: undefined };
      }
    }),
  );
