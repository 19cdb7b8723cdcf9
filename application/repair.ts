/**
 * Admin repairs (SPEC 4.7), each one command step that the image's history records
 * with the admin (or the system, from the ops CLI) as its cause:
 * - force revoke: an image in any state but attached (failed, stuck `adding`) is
 *   revoked and its quota released in the same transaction; the disk-file reaction
 *   removes its file, if one was made (removal is idempotent);
 * - disk retry: a failed or stuck `adding` image gets DiskRetried (back to `adding`),
 *   and the disk-file reaction makes the file again, as for a Created;
 * - force detach: in the records only (the host is dead: no virsh), cause reason
 *   `forced`, the device claim released in the same step.
 */
import { streamIdOf, type Actor, type CommandContext } from '../domain/storageImage';
import { handleCommand, operationIdAt } from './commandHandling';
import { detachInRecords } from './detach';
import { contextOf, viewOf, type ServiceDeps } from './service';
import type { ImageView } from './storePorts';

/** Repairs override rules: the cause says so (`{kind: 'admin', reason: 'forced'}`, or system `forced`). */
const forced = (actor: Actor): Actor => (actor.kind === 'admin' ? { ...actor, reason: 'forced' } : actor.kind === 'system' ? { kind: 'system', reason: 'forced' } : actor);

export const forceRevokeImage = async (deps: ServiceDeps, imageId: number, actor: Actor): Promise<ImageView> => {
  const ctx: CommandContext = contextOf(deps, forced(actor));
  const result = await handleCommand(deps, imageId, { type: 'ForceRevokeStorageImage' }, ctx, {
    // The image counted from Created on, whatever became of its file: release what Created reserved.
    effects: ({ after }) => (after.status === 'locked' ? { quota: { release: { userId: after.image.userId, imageId, sizeMb: after.image.sizeMb } } } : {}),
  });
  deps.logger.info('storage image force-revoked', { audit: 'repair', imageId, actor: ctx.actor, version: result.version });
  return viewOf(result.state, result.version);
};

export const retryDiskFile = async (deps: ServiceDeps, imageId: number, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor.kind === 'system' ? forced(actor) : actor);
  const result = await handleCommand(deps, imageId, (fresh) => ({ type: 'RetryDiskFile', opId: operationIdAt(imageId, fresh) }), ctx);
  deps.logger.info('storage image disk file retried', { audit: 'repair', imageId, actor: ctx.actor, version: result.version });
  return viewOf(result.state, result.version);
};

export const forceDetachImage = async (deps: ServiceDeps, imageId: number, vmId: number | undefined, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, forced(actor));
  const loaded = await deps.events.load(streamIdOf(imageId));
  const result = await detachInRecords(deps, imageId, { type: 'ForceDetach', ...(vmId === undefined ? {} : { vmId }) }, ctx, loaded);
  deps.logger.warn('storage image force-detached in the records only', { audit: 'repair', imageId, vmId, actor: ctx.actor, version: result.version });
  return viewOf(result.state, result.version);
};

/** The time of an image's last event (its stream head), in ms; NaN when unknown. */
const lastEventTime = async (deps: ServiceDeps, imageId: number, version: number): Promise<number> => {
  const head = await deps.events.readStream(streamIdOf(imageId), { fromVersion: version, limit: 1 });
  return Date.parse(head.events[0]?.time ?? '');
};

/** Every image the read model lists in `state` (its state index), revoked ones included. */
async function* imagesIn(deps: ServiceDeps, state: 'adding' | 'locked') {
  let nextToken: string | undefined;
  do {
    const page = await deps.readModel.listAll({ limit: 500, state, includeRevoked: true, ...(nextToken ? { nextToken } : {}) });
    yield* page.items;
    nextToken = page.nextToken;
  } while (nextToken);
}

/**
 * The disk file of every image still `adding` since before `before` (ms) is made again:
 * DiskRetried, whose reaction (the running service's) makes the file as for a Created.
 * For Created (or DiskRetried) events whose reaction gave up and whose dead letter cannot
 * be redriven (records past the stream's retention, the message gone). Returns the ids.
 */
export const retryStuckImages = async (deps: ServiceDeps, before: number, actor: Actor): Promise<number[]> => {
  const retried: number[] = [];
  for await (const image of imagesIn(deps, 'adding')) {
    // The read model's index may lag: the log says whether it is still adding, and since when.
    const { state, version } = await deps.events.load(streamIdOf(image.id));
    if (state.status !== 'adding' || !((await lastEventTime(deps, image.id, version)) < before)) continue;
    await retryDiskFile(deps, image.id, actor);
    retried.push(image.id);
  }
  return retried;
};

/**
 * The disk file of every image revoked within `[from, to]` (ms; `from` absent: any time
 * before `to`) is removed if it is still there (the storage document's removal is
 * idempotent: a file already gone is a success). For Revoked events whose reaction gave
 * up and whose records the stream no longer holds. Returns the ids. Throws on the first
 * host failure (the caller keeps what it was redriving).
 */
export const removeFilesOfRevoked = async (deps: ServiceDeps, window: { from?: number; to: number }): Promise<number[]> => {
  const removed: number[] = [];
  for await (const image of imagesIn(deps, 'locked')) {
    const { state, version } = await deps.events.load(streamIdOf(image.id));
    if (state.status !== 'locked') continue;
    const revokedAt = await lastEventTime(deps, image.id, version);
    if (!(revokedAt <= window.to) || (window.from !== undefined && !(revokedAt >= window.from))) continue;
    await deps.storage.deleteDiskFile({ userId: state.image.userId, imageId: state.image.imageId, storage: state.image.storage });
    deps.logger.info('disk file of a revoked image removed (if it was there)', { audit: 'repair', imageId: image.id, storage: state.image.storage });
    removed.push(image.id);
  }
  return removed;
};
