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
import { handleCommand } from './commandHandling';
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
  const result = await handleCommand(deps, imageId, { type: 'RetryDiskFile' }, ctx);
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
