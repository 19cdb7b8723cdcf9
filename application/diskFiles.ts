/**
 * Disk files, a reaction to the event stream: made on Created (and an admin's
 * DiskRetried), removed on Revoked. Each is a host operation (saga.ts: createFile,
 * retryFile, removeFile): the event is the intent, the storage host's work the host
 * call, and DiskReady / DiskFailed / DiskFileRemoved the outcome, pinned to the
 * operation (a slow outcome of an earlier try changes nothing). The reconciler finishes
 * the ones a crash left open with the same functions.
 */
import { operationIdOf, streamIdOf, type CommandContext } from '../domain/storageImage';
import { handleCommand } from './commandHandling';
import { HostCommandError } from './ports';
import { contextOf, type ServiceDeps } from './service';
import { chooseStorage, type StorageRoom } from './storageChoice';
import type { StoredEvent } from './storePorts';

/** The event types this reaction handles: the diskFiles function's stream filter, and the redrive's. */
export const DISK_FILE_EVENT_TYPES = ['StorageImageCreated', 'StorageImageDiskRetried', 'StorageImageRevoked'] as const;

/**
 * On Created, picks the storage (the emptiest that can hold the disk), makes the disk
 * file there and marks the image ready on it (or failed); on Revoked, removes the file
 * from the image's storage. Both steps are idempotent, so stream redelivery is
 * harmless. When no storage host can be reached, it throws and the stream retries.
 */
export const onStoredEventForDiskFiles = async (deps: ServiceDeps, event: StoredEvent): Promise<void> => {
  if (event.stateAfter.status === 'none') return;
  const { imageId } = event.stateAfter.image;
  if (event.type === 'StorageImageCreated' || event.type === 'StorageImageDiskRetried') {
    await makeDiskFile(deps, imageId, operationIdOf(imageId, event.version));
  } else if (event.type === 'StorageImageRevoked') {
    await removeDiskFile(deps, imageId);
  }
};

const system = (deps: ServiceDeps): CommandContext => contextOf(deps, { kind: 'system', reason: 'disk-file' });

/** Makes the disk file of the try `opId` if the image is still adding for it; its outcome is pinned to `opId`. */
export const makeDiskFile = async (deps: ServiceDeps, imageId: number, opId: string): Promise<void> => {
  const { state } = await deps.events.load(streamIdOf(imageId));
  if (state.status !== 'adding' || (state.fileOp !== undefined && state.fileOp !== opId)) return; // done already, or a newer try runs
  // The image as it is now (a retry: with its current size and filesystem).
  const { userId, sizeMb, filesystem } = state.image;
  const choice = chooseStorage(await roomsOf(deps, imageId), sizeMb);
  if (!choice.ok) {
    if (choice.why === 'unanswered') throw new HostCommandError('unreachable', `image ${imageId}: ${choice.reason}`);
    deps.logger.error('no storage can hold the disk file', { imageId, sizeMb, reason: choice.reason });
    await handleCommand(deps, imageId, { type: 'MarkDiskFailed', reason: choice.reason, opId }, system(deps));
    return;
  }
  const { storage } = choice;
  try {
    await deps.storage.createDiskFile({ imageId, userId, sizeMb, filesystem, storage });
  } catch (error) {
    if (error instanceof HostCommandError && error.kind === 'failed') {
      deps.logger.error('disk file creation failed', { imageId, storage, detail: error.detail });
      await handleCommand(deps, imageId, { type: 'MarkDiskFailed', reason: 'the storage host could not make the disk file', opId }, system(deps));
      return;
    }
    throw error;
  }
  deps.logger.info('disk file made', { imageId, storage, filesystem, sizeMb });
  const ready = await handleCommand(deps, imageId, { type: 'MarkDiskReady', storage, opId }, system(deps));
  if (!ready.appended) deps.logger.warn('disk file made, but its try is no longer open; nothing recorded', { imageId, opId });
};

/** Removes a revoked image's disk file (a file gone already is a success), then DiskFileRemoved. */
export const removeDiskFile = async (deps: ServiceDeps, imageId: number): Promise<void> => {
  const { state } = await deps.events.load(streamIdOf(imageId));
  if (state.status !== 'locked' || state.fileRemoved) return;
  await deps.storage.deleteDiskFile({ userId: state.image.userId, imageId, storage: state.image.storage });
  deps.logger.info('disk file removed', { imageId, storage: state.image.storage });
  await handleCommand(deps, imageId, { type: 'MarkDiskFileRemoved' }, system(deps));
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
