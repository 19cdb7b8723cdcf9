/**
 * The hypervisor and storage host over SSM Run Command, for the functions that talk
 * to hosts (restApi, cc1Api, diskFiles, reconciler). Kept out of container.ts so the
 * functions that never reach a host (projector, vmEvents) do not bundle the SSM client.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Hypervisor, StorageHost } from '../../application/ports';
import type { DocumentKey } from '../../adapters/ssm/documents/definitions';
import { SsmHypervisor, SsmStorageHost } from '../../adapters/ssm/ssmHypervisor';
import { diskFilePath } from '../../application/storageChoice';
import { storagesOf, type RuntimeConfig } from './config';
import { localOptions, type Hosts } from './container';
import { lazy } from './lazy';
import { tracer } from './observability';

/** Clients are made on first use: most requests never reach a host. */
export const hostsOverSsm = (config: RuntimeConfig, client?: SSMClient): Hosts => {
  const storages = storagesOf(config);
  const ssmClient = lazy(() => client ?? tracer.captureAWSv3Client(new SSMClient({ ...localOptions(config.ssmEndpoint) })));
  const common = () => ({
    client: ssmClient(),
    documentNames: config.ssmDocumentNames as Partial<Record<DocumentKey, string>>,
    timeoutMs: config.hostCommandTimeoutMs,
    pollIntervalMs: config.hostCommandPollMs,
  });
  const hv = lazy(() => new SsmHypervisor(common()));
  const st = lazy(() => new SsmStorageHost({ ...common(), storages }));
  const hypervisorPort: Hypervisor = {
    attachDisk: (request) => hv().attachDisk(request),
    detachDisk: (request) => hv().detachDisk(request),
    listDisks: (target) => hv().listDisks(target),
    resizeDisk: (request) => hv().resizeDisk(request),
  };
  const storagePort: StorageHost = {
    storageIds: storages.map((s) => s.id),
    freeSpaceMb: (storage) => st().freeSpaceMb(storage),
    mkfsTools: (storage) => st().mkfsTools(storage),
    createDiskFile: (request) => st().createDiskFile(request),
    deleteDiskFile: (request) => st().deleteDiskFile(request),
    resizeDiskFile: (request) => st().resizeDiskFile(request),
    pathOf: (ref) => diskFilePath(storages, ref),
  };
  return { hypervisor: hypervisorPort, storage: storagePort };
};
