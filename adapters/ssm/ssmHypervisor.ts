/**
 * Hypervisor and StorageHost over SSM Run Command (SPEC 4.4): the project's documents
 * (adapters/ssm/documents) run virsh on the hypervisor hosts and the file work on the
 * storage host. The same code talks to AWS and to the local Run Command endpoint.
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import type {
  AttachDiskRequest,
  AttachedDisk,
  CreateDiskFileRequest,
  DetachDiskRequest,
  DiskFileRef,
  DiskTarget,
  Hypervisor,
  ResizeDiskRequest,
  StorageHost,
} from '../../application/ports';
import { HostCommandError } from '../../application/ports';
import { DEFAULT_STORAGE, diskFilePath, storageOf, type StorageLocation } from '../../application/storageChoice';
import { DEFAULT_DOCUMENT_NAMES, DEFINITIONS, type DocumentKey } from './documents/definitions';
import { runDocument } from './runDocument';

export interface SsmCommonConfig {
  client: SSMClient;
  /** Deployed document names (CDK names them); defaults to `CC1-AttachDisk`, ... */
  documentNames?: Partial<Record<DocumentKey, string>>;
  /** Bound on one command, send to result. Default 30 s. */
  timeoutMs?: number;
  /** GetCommandInvocation interval. Default 500 ms. */
  pollIntervalMs?: number;
}

export interface SsmHypervisorConfig extends SsmCommonConfig {
  /** libvirt URI on the hosts. Default `qemu:///system`. */
  libvirtUri?: string;
  /** How long the detach document waits for the guest to release a disk (0..59). Default 10. */
  detachWaitSeconds?: number;
}

/** Several storages, in configuration order: each its root (as the hypervisors see it too) and its host. */
interface SsmStorages {
  storages: StorageLocation[];
}

/** One storage (`default`): its host's managed instance id, and its root as both the storage host and the hypervisors see it. */
interface SsmSingleStorage {
  storageHostId: string;
  storagePath: string;
}

export type SsmStorageHostConfig = SsmCommonConfig &
  (SsmStorages | SsmSingleStorage) & {
    /** Making a large xfs/ntfs disk takes longer than virsh: default 5 min. */
    createTimeoutMs?: number;
  };

abstract class SsmRunner {
  private readonly names: Record<DocumentKey, string>;
  protected constructor(private readonly common: SsmCommonConfig) {
    this.names = { ...DEFAULT_DOCUMENT_NAMES, ...common.documentNames };
  }

  protected run(key: DocumentKey, hostId: string, parameters: Record<string, string>, what: string, timeoutMs?: number) {
    return runDocument({
      client: this.common.client,
      hostId,
      documentName: this.names[key],
      document: DEFINITIONS[key],
      parameters,
      what,
      timeoutMs: timeoutMs ?? this.common.timeoutMs ?? 30_000,
      pollIntervalMs: this.common.pollIntervalMs ?? 500,
    });
  }
}

export class SsmHypervisor extends SsmRunner implements Hypervisor {
  private readonly libvirtUri: string;
  private readonly detachWaitSeconds: number;

  constructor(config: SsmHypervisorConfig) {
    super(config);
    this.libvirtUri = config.libvirtUri ?? 'qemu:///system';
    this.detachWaitSeconds = config.detachWaitSeconds ?? 10;
  }

  async attachDisk(r: AttachDiskRequest): Promise<void> {
    await this.run(
      'attachDisk',
      r.hostId,
      { Domain: r.domain, File: r.file, Dev: r.dev, Bus: r.bus, LibvirtUri: this.libvirtUri },
      `attach ${r.dev} to ${r.domain}`,
    );
  }

  async detachDisk(r: DetachDiskRequest): Promise<void> {
    await this.run(
      'detachDisk',
      r.hostId,
      { Domain: r.domain, Dev: r.dev, LibvirtUri: this.libvirtUri, WaitSeconds: String(this.detachWaitSeconds) },
      `detach ${r.dev} from ${r.domain}`,
    );
  }

  async resizeDisk(r: ResizeDiskRequest): Promise<void> {
    await this.run(
      'blockResize',
      r.hostId,
      { Domain: r.domain, Dev: r.dev, SizeMb: String(r.sizeMb), LibvirtUri: this.libvirtUri },
      `grow ${r.dev} of ${r.domain} to ${r.sizeMb} MiB`,
    );
  }

  async listDisks(t: DiskTarget): Promise<AttachedDisk[]> {
    const { stdout } = await this.run('listDisks', t.hostId, { Domain: t.domain, LibvirtUri: this.libvirtUri }, `list disks of ${t.domain}`);
    return parseDiskList(stdout);
  }
}

/** Lines `CC1_MKFS=<tool>` from the StorageTools document, then its end marker. */
export function parseMkfsTools(stdout: string, storage: string): string[] {
  if (!/^CC1_TOOLS_END$/m.test(stdout)) throw new HostCommandError('failed', `list the mkfs tools of storage ${storage}: no end marker`, stdout);
  return [...stdout.matchAll(/^CC1_MKFS=(\S+)$/gm)].map((m) => m[1]!);
}

/** Lines `CC1_DISK<TAB>type<TAB>device<TAB>target<TAB>source` from the ListDisks document. */
export function parseDiskList(stdout: string): AttachedDisk[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('CC1_DISK\t'))
    .map((line) => {
      const [, , , dev = '', source = '-'] = line.split('\t');
      return { dev, source };
    });
}

export class SsmStorageHost extends SsmRunner implements StorageHost {
  private readonly storages: StorageLocation[];
  readonly storageIds: readonly string[];

  constructor(private readonly config: SsmStorageHostConfig) {
    super(config);
    this.storages = 'storages' in config ? config.storages : [{ id: DEFAULT_STORAGE, path: config.storagePath, hostId: config.storageHostId }];
    if (this.storages.length === 0) throw new Error('SsmStorageHost: no storage configured');
    this.storageIds = this.storages.map((s) => s.id);
  }

  pathOf(ref: DiskFileRef): string {
    return diskFilePath(this.storages, ref);
  }

  async freeSpaceMb(storage: string): Promise<number> {
    const { path, hostId } = storageOf(this.storages, storage);
    const { stdout } = await this.run('storageFreeSpace', hostId, { StoragePath: path }, `read the free space of storage ${storage}`);
    const m = /^CC1_FREE_MB=([0-9]+)$/m.exec(stdout);
    if (!m) throw new HostCommandError('failed', `read the free space of storage ${storage}: no CC1_FREE_MB line`, stdout);
    return Number(m[1]);
  }

  async mkfsTools(storage: string): Promise<string[]> {
    const { hostId } = storageOf(this.storages, storage);
    const { stdout } = await this.run('storageTools', hostId, {}, `list the mkfs tools of storage ${storage}`);
    return parseMkfsTools(stdout, storage);
  }

  async createDiskFile(r: CreateDiskFileRequest): Promise<void> {
    const { path, hostId } = storageOf(this.storages, r.storage);
    await this.run(
      'createDiskFile',
      hostId,
      {
        StoragePath: path,
        UserId: String(r.userId),
        ImageId: String(r.imageId),
        SizeMb: String(r.sizeMb),
        Filesystem: r.filesystem,
      },
      `create the disk file of image ${r.imageId}`,
      this.config.createTimeoutMs ?? 300_000,
    );
  }

  async resizeDiskFile(r: DiskFileRef & { sizeMb: number }): Promise<void> {
    const { path, hostId } = storageOf(this.storages, r.storage);
    await this.run(
      'resizeDiskFile',
      hostId,
      { StoragePath: path, UserId: String(r.userId), ImageId: String(r.imageId), SizeMb: String(r.sizeMb) },
      `grow the disk file of image ${r.imageId} to ${r.sizeMb} MiB`,
    );
  }

  async deleteDiskFile(r: DiskFileRef): Promise<void> {
    const { path, hostId } = storageOf(this.storages, r.storage);
    await this.run(
      'deleteDiskFile',
      hostId,
      { StoragePath: path, UserId: String(r.userId), ImageId: String(r.imageId) },
      `delete the disk file of image ${r.imageId}`,
    );
  }
}
