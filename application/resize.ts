/**
 * Grow a disk (SPEC 4.7): the host first, then one command step.
 *
 * - A detached image (or one recorded on a VM that is not running): the storage host
 *   grows its file (`truncate`, never shrinks).
 * - An image attached to a running VM on the virtio bus: `virsh blockresize` on the
 *   VM's hypervisor, live; the guest sees the new size and the raw file grows with it.
 * - Other attached buses are refused (image_attached: detach first).
 *
 * Then Resized {fromMb, toMb} is appended with the quota grown by the difference in the
 * same transaction (quotas.ts: the limit that binds the user). If the host fails, nothing
 * is appended. Crash order: the host grew, the step did not commit (crash, or the quota
 * filled up between the pre-check and the step): the file is larger than the records;
 * no data is lost, the extra room is unused by the guest's filesystem until it is grown,
 * and a repeat of the same resize finds the host done (same size: success) and appends.
 */
import { fail } from '../domain/errors';
import { checkReadAccess, checkResizable } from '../domain/policies';
import { streamIdOf, type Actor } from '../domain/storageImage';
import { handleCommand } from './commandHandling';
import { hostError } from './hostErrors';
import { withUserLimit } from './quotas';
import { contextOf, viewOf, type ServiceDeps } from './service';
import type { ImageView } from './storePorts';

export const resizeImage = async (deps: ServiceDeps, imageId: number, sizeMb: number, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  const loaded = await deps.events.load(streamIdOf(imageId));
  const state = checkReadAccess(loaded.state, actor);
  if (state.status === 'ok' && state.image.sizeMb === sizeMb) return viewOf(state, loaded.version); // a retry after success
  const growth = checkResizable(state, sizeMb);
  const { image } = state;
  // Refuse before touching the host when the quota plainly cannot hold it (the step checks it again, exactly).
  const quota = await deps.quota.entry(image.userId);
  const limitMb = quota.limitMb ?? deps.config.defaultQuotaMb;
  if (quota.usedMb + (sizeMb - growth.fromMb) > limitMb) {
    fail('user_storage_limit', `Storage quota exceeded: ${quota.usedMb} MB used of ${limitMb} MB, ${sizeMb - growth.fromMb} MB more asked.`);
  }
  const vm = growth.how === 'live' ? await deps.vms.get(growth.vmId) : undefined;
  try {
    if (growth.how === 'live' && vm?.state === 'running' && vm.hostId && vm.domain) {
      await deps.hypervisor.resizeDisk({ hostId: vm.hostId, domain: vm.domain, dev: growth.diskDev, sizeMb });
    } else {
      // Detached, or recorded on a VM that does not run (its disks go into the domain XML at start): the file.
      await deps.storage.resizeDiskFile({ userId: image.userId, imageId, storage: image.storage, sizeMb });
    }
  } catch (error) {
    deps.logger.warn('resize failed on the host', { imageId, sizeMb, how: growth.how, error: String(error), detail: (error as { detail?: string }).detail });
    throw hostError(error, 'image_resize');
  }
  let first = true;
  const result = await withUserLimit(
    deps,
    (limit) =>
      handleCommand(deps, imageId, { type: 'ResizeStorageImage', sizeMb }, ctx, {
        ...(first && !(first = false) ? { loaded } : {}),
        effects: ({ event, after }) => {
          const { fromMb, toMb } = event.data as { fromMb: number; toMb: number };
          const userId = after.status === 'none' ? image.userId : after.image.userId;
          return { quota: { grow: { userId, imageId, fromMb, toMb, ...limit } } };
        },
      }),
    (error, limit) => `Storage quota exceeded: ${error.usedMb} MB used of ${limit} MB, ${sizeMb - growth.fromMb} MB more asked.`,
  );
  deps.logger.info('storage image resized', { imageId, fromMb: growth.fromMb, toMb: sizeMb, how: growth.how });
  return viewOf(result.state, result.version);
};
