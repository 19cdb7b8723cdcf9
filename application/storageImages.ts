/** The StorageImage use cases, one module per workflow; this index keeps one import path for the handlers. */
export { attachAtBoot, bootDiskXml } from './bootAttach';
export { detachImage } from './detach';
export { onStoredEventForDiskFiles } from './diskFiles';
export { attachImage, imageIdOfSource } from './hotAttach';
export { createImage, editImage, revokeImage, type CreateInput } from './imageLifecycle';
export { getHistory, getImage, listAllImages, listImages } from './reads';
export { quotaOf, setQuota } from './quotas';
export { forceDetachImage, forceRevokeImage, retryDiskFile } from './repair';
export { resizeImage } from './resize';
export { type Metrics, type ServiceConfig, type ServiceDeps } from './service';
export { onVmStateChange } from './vmStops';
