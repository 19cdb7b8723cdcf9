/**
 * Create, edit, revoke: one command step each. Create and revoke carry the quota entry
 * in the same transaction as their event, so the ledger is exact whatever interleaves.
 * The disk file is made and removed afterwards by the disk-file reaction (diskFiles.ts).
 */
import type { DiskController, Filesystem } from '../domain/catalog';
import { checkNewImage, initialState, streamIdOf, type Actor } from '../domain/storageImage';
import { handleCommand } from './commandHandling';
import { requireFilesystem } from './filesystemSupport';
import { contextOf, viewOf, type ServiceDeps } from './service';
import { withUserLimit } from './quotas';
import { WriteBoundError, type ImageView } from './storePorts';

export interface CreateInput {
  name: string;
  description: string;
  diskController: DiskController;
  filesystem: Filesystem;
  sizeMb: number;
}

/**
 * One transaction: Created, its head and row, and the quota entry (refused over the
 * limit that binds the user: quotas.ts; a user with an own limit costs one more).
 */
export const createImage = async (deps: ServiceDeps, input: CreateInput, actor: Actor & { userId: number }, writeKey?: string): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  // Bad input is a 400 whatever the hosts can do; then a disk no storage host can make is
  // refused now, naming the missing tool, not accepted to fail later.
  checkNewImage(input);
  await requireFilesystem(deps.storage, input.filesystem);
  const imageId = await deps.ids.nextImageId();
  // The id was just handed out, so the stream is empty: no load.
  try {
    const result = await withUserLimit(
      deps,
      (limit) =>
        handleCommand(deps, imageId, { type: 'CreateStorageImage', imageId, ...input }, ctx, {
          loaded: { version: 0, state: initialState() },
          effects: () => ({
            quota: { reserve: { userId: actor.userId, imageId, sizeMb: input.sizeMb, ...limit } },
            // A retry of this request after any crash finds its key bound to the first image.
            ...(writeKey ? { binding: { key: writeKey, imageId } } : {}),
          }),
        }),
      (error, limitMb) => `Storage quota exceeded: ${error.usedMb} MB used of ${limitMb} MB, ${input.sizeMb} MB asked.`,
    );
    return viewOf(result.state, result.version);
  } catch (error) {
    if (!(error instanceof WriteBoundError)) throw error;
    // The first try of this very request (same caller, route and key) made it: answer that image.
    const first = await deps.events.load(streamIdOf(error.imageId));
    return viewOf(first.state, first.version);
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

/** One transaction: Revoked and the quota entry released. The file goes afterwards (diskFiles.ts). */
export const revokeImage = async (deps: ServiceDeps, imageId: number, actor: Actor): Promise<ImageView> => {
  const result = await handleCommand(deps, imageId, { type: 'RevokeStorageImage' }, contextOf(deps, actor), {
    effects: ({ after }) => (after.status === 'locked' ? { quota: { release: { userId: after.image.userId, imageId, sizeMb: after.image.sizeMb } } } : {}),
  });
  return viewOf(result.state, result.version);
};
