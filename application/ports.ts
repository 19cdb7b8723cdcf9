/**
 * Ports: what the application needs from the world. Adapters (adapters/) implement
 * them for AWS and for the local stack; tests use the same adapters against real
 * protocol servers.
 */
import type { DiskController, Filesystem } from '../domain/catalog';

/** Where a VM's domain lives: the SSM managed instance id of its hypervisor host. */
export interface DiskTarget {
  hostId: string; // `i-…` or `mi-…`
  domain: string; // libvirt domain name, `vm-<vmId>-<userId>`
}

export interface AttachDiskRequest extends DiskTarget {
  file: string; // absolute path of the raw disk file on shared storage
  dev: string; // guest device, e.g. `vdb`
  bus: DiskController;
}

export interface DetachDiskRequest extends DiskTarget {
  dev: string;
}

/** Grow an attached disk live (virsh blockresize): the guest sees the new size, the raw file grows with it. */
export interface ResizeDiskRequest extends DiskTarget {
  dev: string;
  sizeMb: number;
}

export interface AttachedDisk {
  dev: string;
  source: string; // file path, or '-' when none
}

/**
 * Why a hypervisor or storage command failed:
 * - `failed`: the host ran it and it failed (bad target, duplicate device, ...);
 * - `unknown_domain`: the domain is not defined/running on that host;
 * - `timeout`: no answer within the bound (the command may still run: reconcile);
 * - `unreachable`: the host could not be asked at all (offline, unknown instance).
 */
export type HostFailureKind = 'failed' | 'unknown_domain' | 'timeout' | 'unreachable';

export class HostCommandError extends Error {
  constructor(
    readonly kind: HostFailureKind,
    message: string,
    /** Raw stderr/output for the logs; never shown to users. */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'HostCommandError';
  }
}

/** virsh on the hypervisor hosts (SSM Run Command in AWS). Throws HostCommandError. */
export interface Hypervisor {
  attachDisk(request: AttachDiskRequest): Promise<void>;
  detachDisk(request: DetachDiskRequest): Promise<void>;
  /** `virsh domblklist`: the disks the domain has now. */
  listDisks(target: DiskTarget): Promise<AttachedDisk[]>;
  /** `virsh blockresize` of an attached disk to `sizeMb` MiB, confirmed by `domblkinfo`; already that size is a success. */
  resizeDisk(request: ResizeDiskRequest): Promise<void>;
}

export interface DiskFileRef {
  userId: number;
  imageId: number;
  /** Id of the storage the file is on; absent (images made before there were several): `default`, or the first. */
  storage?: string;
}

export interface CreateDiskFileRequest extends DiskFileRef {
  sizeMb: number;
  filesystem: Filesystem;
}

/** Disk files on the storage hosts (SSM Run Command in AWS). Throws HostCommandError. */
export interface StorageHost {
  /** The configured storage ids, in configuration order (never empty). */
  readonly storageIds: readonly string[];
  /** Free space (MiB) of that storage's folder, as its host sees it. */
  freeSpaceMb(storage: string): Promise<number>;
  /** The mkfs programs (`mkfs.ext4`, ...) that storage's host has, as CreateDiskFile would find them. */
  mkfsTools(storage: string): Promise<string[]>;
  createDiskFile(request: CreateDiskFileRequest): Promise<void>;
  deleteDiskFile(request: DiskFileRef): Promise<void>;
  /** Grows the file to `sizeMb` MiB (`truncate`, never shrinks; the same size again is a success). */
  resizeDiskFile(request: DiskFileRef & { sizeMb: number }): Promise<void>;
  /** The path a hypervisor sees for this image: `<its storage's path>/<user id>/<image id>`. */
  pathOf(ref: DiskFileRef): string;
}

/**
 * Where a stream consumer's given-up batch is described (Lambda's on-failure destination
 * for a DynamoDB stream: `DDBStreamBatchInfo`). It names a shard range, not the records:
 * the records stay in the stream for its 24 h retention.
 */
export interface StreamBatchInfo {
  shardId: string;
  startSequenceNumber: string;
  endSequenceNumber: string;
  batchSize: number;
  streamArn: string;
  /** ISO times; AWS sends both, letters of older local stacks may lack them. */
  approximateArrivalOfFirstRecord?: string;
  approximateArrivalOfLastRecord?: string;
}

export interface DeadLetter {
  /** The message id (SQS) or the failed invocation's request id (local). */
  id: string;
  /** When the batch was given up (ISO). */
  timestamp?: string;
  /** Absent when the message is not a stream batch description (it is reported and kept). */
  batch?: StreamBatchInfo;
  /** The message body as received, for reports of a message that could not be read. */
  body: string;
}

/** A dead-letter queue (SQS on AWS, the local stack's list locally). */
export interface DeadLetters {
  /** Where, in words, for the report. */
  readonly where: string;
  /** The next letters not yet received in this run (hidden from other receivers meanwhile); [] when none are left. */
  receive(): Promise<DeadLetter[]>;
  /** Removes a received letter for good. */
  delete(letter: DeadLetter): Promise<void>;
}
