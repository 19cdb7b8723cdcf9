/** How an image is shown: one function, used by the read model and by exact reads. */
import type { StorageImageState } from '../domain/storageImage';
import type { ImageView } from './storePorts';

export const toImageView = (state: StorageImageState, version: number): ImageView | undefined => {
  if (state.status === 'none') return undefined;
  const { image } = state;
  const attachment = state.status === 'ok' ? state.attachment : null;
  return {
    id: image.imageId,
    userId: image.userId,
    name: image.name,
    description: image.description,
    diskController: image.diskController,
    filesystem: image.filesystem,
    sizeMb: image.sizeMb,
    state: state.status,
    progress: state.status === 'adding' ? 0 : 100,
    creationDate: image.creationDate,
    // An attach in progress is not shown as attached: no Attached event yet.
    vmId: attachment?.phase === 'attached' ? attachment.vmId : null,
    diskDev: attachment?.phase === 'attached' ? attachment.diskDev : null,
    version,
    attachedAt: attachment?.phase === 'attached' ? attachment.since : null,
  };
};
