/**
 * Grow a disk (SPEC 4.7), a host operation (saga.ts, HOST_OPERATIONS.resize;
 * docs/event-store.md):
 * 1. intent: ResizeRequested {opId, fromMb, toMb} with the quota grown by the difference
 *    in the same transaction (quotas.ts: the limit that binds the user). The growth is
 *    paid before any host grows anything, and while it is open the image takes no
 *    attach, revoke or other resize;
 * 2. the host grows the disk: a detached image's file (`truncate`, never shrinks) on its
 *    storage host; an image attached to a running VM on the virtio bus live, with
 *    `virsh blockresize` (the guest sees the new size, the raw file grows with it);
 * 3. outcome, pinned to opId: Resized; or ResizeFailed with the quota given back.
 *
 * A crash between 1 and 3 leaves the operation open: the reconciler grows again (both
 * host calls are idempotent) and completes it. A repeat of the same resize by the caller
 * finds it open and finishes it the same way.
 */
import { checkReadAccess, checkResizable } from '../domain/policies';
import { streamIdOf, type Actor, type StorageImageState } from '../domain/storageImage';
import { eventOf, handleCommand, operationIdAt } from './commandHandling';
import { hostError } from './hostErrors';
import { HostCommandError } from './ports';
import { withUserLimit } from './quotas';
import { finishOperation } from './saga';
import { contextOf, viewOf, type ServiceDeps } from './service';
import type { ImageView, LoadedStream } from './storePorts';

export const resizeImage = async (deps: ServiceDeps, imageId: number, sizeMb: number, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  const loaded = await deps.events.load(streamIdOf(imageId));
  const state = checkReadAccess(loaded.state, actor);
  if (state.status === 'ok' && state.image.sizeMb === sizeMb && !state.operation) return viewOf(state, loaded.version); // a retry after success
  if (!(state.status === 'ok' && state.operation?.toMb === sizeMb)) checkResizable(state, sizeMb); // bad input: a clear error, nothing written
  const fromMb = state.image.sizeMb;

  let first = true;
  const intent = await withUserLimit(
    deps,
    (limit) =>
      handleCommand(deps, imageId, (fresh) => ({ type: 'RequestResize', sizeMb, opId: operationIdAt(imageId, fresh) }), ctx, {
        ...(first && !(first = false) ? { loaded } : {}),
        effects: ({ event, after }) => {
          const { fromMb: from, toMb } = eventOf(event, 'StorageImageResizeRequested').data;
          const userId = after.status === 'none' ? 0 : after.image.userId;
          return { quota: { grow: { userId, imageId, fromMb: from, toMb, ...limit } } };
        },
      }),
    (error, limit) => `Storage quota exceeded: ${error.usedMb} MB used of ${limit} MB, ${sizeMb - fromMb} MB more asked.`,
  );
  // Nothing decided: the size was reached meanwhile, or this very resize is open (a retry finishes it).
  if (!(intent.state.status === 'ok' && intent.state.operation?.toMb === sizeMb)) return viewOf(intent.state, intent.version);
  return finishResize(deps, imageId, intent, actor);
};

/** Steps 2 and 3 of an open resize (also the reconciler's repair of one left open). */
export const finishResize = async (deps: ServiceDeps, imageId: number, open: LoadedStream, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  const state = open.state as Extract<StorageImageState, { status: 'ok' }>;
  const operation = state.operation!;
  const { opId, toMb } = operation;
  const attachment = state.attachment;
  const vm = attachment?.phase === 'attached' ? await deps.vms.get(attachment.vmId) : undefined;
  const live = vm?.state === 'running' && vm.hostId && vm.domain && attachment ? { hostId: vm.hostId, domain: vm.domain, dev: attachment.diskDev } : undefined;
  const result = await finishOperation({
    host: () =>
      live
        ? deps.hypervisor.resizeDisk({ ...live, sizeMb: toMb })
        : // Detached, or recorded on a VM that does not run (its disks go into the domain XML at start): the file.
          deps.storage.resizeDiskFile({ userId: state.image.userId, imageId, storage: state.image.storage, sizeMb: toMb }),
    outcome: () => handleCommand(deps, imageId, { type: 'CompleteResize', opId }, ctx, { loaded: open }),
    failed: async (error) => {
      deps.logger.warn('resize failed on the host', { imageId, opId, sizeMb: toMb, live: !!live, error: String(error), detail: (error as { detail?: string }).detail });
      // The host refused: nothing grew, the growth is given back. No answer (timeout, unreachable): the grow may
      // still happen, so the operation stays open for a retry or the reconciler, which grow again and complete it.
      if (error instanceof HostCommandError && error.kind === 'failed') await failResize(deps, imageId, opId, 'the host could not grow the disk', actor);
      throw hostError(error, 'image_resize');
    },
  });
  deps.logger.info('storage image resized', { imageId, opId, fromMb: operation.fromMb, toMb, live: !!live });
  return viewOf(result.state, result.version);
};

/** ResizeFailed for `opId`, the quota back at the old size, in one step (nothing if it ended already). */
export const failResize = (deps: ServiceDeps, imageId: number, opId: string, reason: string, actor: Actor) =>
  handleCommand(deps, imageId, { type: 'FailResize', opId, reason }, contextOf(deps, actor), {
    effects: ({ event, after }) => {
      const { fromMb, toMb } = eventOf(event, 'StorageImageResizeFailed').data;
      const userId = after.status === 'none' ? 0 : after.image.userId;
      return { quota: { shrink: { userId, imageId, fromMb: toMb, toMb: fromMb } } };
    },
  });
