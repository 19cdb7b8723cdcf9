/**
 * Detach, a host operation (saga.ts, HOST_OPERATIONS.detach; docs/event-store.md): it
 * reserves nothing, so its intent is the attachment it read (its attach id). virsh
 * detach-disk (confirmed by domblklist) when the VM runs, then one step pinned to that
 * attach id: Detached and the device claim released. A detach that lost a race (the
 * attachment ended, or a newer one began) changes nothing. A crash after virsh leaves
 * the records attached and the host detached; the reconciler appends the missing Detached.
 */
import { isLiveAttachable } from '../domain/catalog';
import { fail } from '../domain/errors';
import { checkImageAccess } from '../domain/policies';
import { streamIdOf, type Actor, type CommandContext } from '../domain/storageImage';
import { handleCommand, type CommandResult } from './commandHandling';
import { hostError } from './hostErrors';
import { HostCommandError } from './ports';
import { contextOf, viewOf, type ServiceDeps } from './service';
import { DeviceClaimError, type ImageView, type LoadedStream } from './storePorts';

export const detachImage = async (deps: ServiceDeps, imageId: number, vmId: number | undefined, actor: Actor): Promise<ImageView> => {
  const ctx = contextOf(deps, actor);
  const loaded = await deps.events.load(streamIdOf(imageId));
  const { state } = loaded;
  if (state.status === 'none') return fail('image_get', 'No such storage image.');
  checkImageAccess(state.image.userId, actor);
  const attachment = state.status === 'ok' ? state.attachment : null;
  if (!attachment) return fail('storage_image_detach', 'The storage image is not attached.');
  if (vmId !== undefined && attachment.vmId !== vmId) fail('storage_image_detach', `The storage image is not attached to VM ${vmId}.`);
  if (attachment.phase === 'attaching') fail('storage_image_detach', 'An attach of this storage image is in progress; try again shortly.');
  const { diskDev } = attachment;
  const vm = await deps.vms.get(attachment.vmId);
  if (vm?.state === 'running' && vm.hostId && vm.domain) {
    if (!isLiveAttachable(state.image.diskController)) {
      fail('storage_image_detach', `A ${state.image.diskController} disk cannot be unplugged from a running VM; stop the VM first.`);
    }
    try {
      await deps.hypervisor.detachDisk({ hostId: vm.hostId, domain: vm.domain, dev: diskDev });
    } catch (error) {
      // The domain is gone from its host: the disk is certainly not attached there.
      if (!(error instanceof HostCommandError && error.kind === 'unknown_domain')) {
        deps.logger.warn('hypervisor detach failed', { imageId, vmId: attachment.vmId, diskDev, error: String(error), detail: (error as HostCommandError).detail });
        deps.metrics?.count('DetachFailed', { kind: error instanceof HostCommandError ? error.kind : 'failed' });
        throw hostError(error, 'storage_image_detach');
      }
    }
  }
  const result = await detachInRecords(deps, imageId, { type: 'Detach', attachId: attachment.attachId }, ctx, loaded);
  if (!result.appended) {
    // The attachment it unplugged ended meanwhile (a stop, another detach): this detach
    // changed nothing, and says so, as a detach of a detached image does.
    deps.logger.info('detach: that attachment ended already; nothing changed', { imageId, attachId: attachment.attachId });
    const now = result.state.status === 'ok' ? result.state.attachment : null;
    fail(
      'storage_image_detach',
      now ? 'The storage image was detached and attached again meanwhile; this detach changed nothing.' : 'The storage image was detached meanwhile (its VM stopped, or another detach); this detach changed nothing.',
    );
  }
  deps.metrics?.count('DetachSucceeded');
  return viewOf(result.state, result.version);
};

/**
 * The records' side of a detach (also of a stopped VM's): the event and the release of
 * the device its attach holds, in one step. A claim that this attach no longer holds
 * (data written before claims named their attach) is left alone; the event still goes.
 */
export const detachInRecords = async (
  deps: ServiceDeps,
  imageId: number,
  command: { type: 'Detach'; attachId: string } | { type: 'DetachStoppedVm'; vmId: number; stoppedAt?: string } | { type: 'ForceDetach'; vmId?: number },
  ctx: CommandContext,
  loaded?: LoadedStream,
): Promise<CommandResult> => {
  const releasing = (release: boolean) =>
    handleCommand(deps, imageId, command, ctx, {
      ...(loaded ? { loaded } : {}),
      effects: ({ event }) => {
        const { vmId, diskDev, attachId } = event.data as { vmId: number; diskDev: string; attachId?: string };
        return release && attachId ? { releases: [{ vmId, dev: diskDev, attachId }] } : {};
      },
    });
  try {
    return await releasing(true);
  } catch (error) {
    if (!(error instanceof DeviceClaimError && error.reason === 'not_held')) throw error;
    deps.logger.warn('detach: the device claim is not held by this attach; detached in the records only', { imageId, command: command.type });
    return releasing(false);
  }
};
