/** Disk files, a reaction to the event stream: made on Created (and an admin's DiskRetried), removed on Revoked. */
import type { CommandContext } from '../domain/storageImage';
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
  const system = (): CommandContext => contextOf(deps, { kind: 'system', reason: 'disk-file' });
  if (event.type === 'StorageImageCreated' || event.type === 'StorageImageDiskRetried') {
    if (event.stateAfter.status === 'none') return;
    // The image as the event left it (a retry: with its current size and filesystem).
    const { imageId, userId, sizeMb, filesystem } = event.stateAfter.image;
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
    deps.logger.info('disk file made', { imageId, storage, filesystem, sizeMb });
    await handleCommand(deps, imageId, { type: 'MarkDiskReady', storage }, system());
  } else if (event.type === 'StorageImageRevoked') {
    const image = event.stateAfter.status === 'none' ? undefined : event.stateAfter.image;
    if (image) {
      await deps.storage.deleteDiskFile({ userId: image.userId, imageId: image.imageId, storage: image.storage });
      deps.logger.info('disk file removed', { imageId: image.imageId, storage: image.storage });
    }
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
