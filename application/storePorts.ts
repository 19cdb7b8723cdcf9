/**
 * Ports to the stores. adapters/dynamodb implements them with single-item
 * conditional writes and Query only (no transactions, no Streams needed), so the
 * same code runs on AWS DynamoDB and on the embedded dynalite server.
 */
import type { NewEvent, StorageImageEvent, StorageImageState } from '../domain/storageImage';

// ---------------------------------------------------------------------------
// Event store

/** The head of a stream: its last version and the state after it (0 / initial when empty). */
export interface LoadedStream {
  version: number;
  state: StorageImageState;
}

/** Someone else appended first: reload and decide again. */
export class ConcurrencyError extends Error {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
  ) {
    super(`stream ${streamId} moved past version ${expectedVersion}`);
    this.name = 'ConcurrencyError';
  }
}

/** A stored event with the aggregate state right after it (what a projection needs). */
export type StoredEvent = StorageImageEvent & { stateAfter: StorageImageState };

export interface EventStore {
  /**
   * One strongly consistent read, whatever the stream's length: every event item
   * carries the state after it, so the newest item is the stream head.
   */
  load(streamId: string): Promise<LoadedStream>;
  /**
   * Writes `event` as version `expectedVersion + 1`, with `stateAfter`.
   * Throws ConcurrencyError when that version exists already.
   */
  append(streamId: string, expectedVersion: number, event: NewEvent, stateAfter: StorageImageState): Promise<StoredEvent>;
  /** The stream's events in version order (paged internally), from `fromVersion` (default 1). */
  readStream(streamId: string, fromVersion?: number): Promise<StoredEvent[]>;
  /** Every event of every stream, in pages, for rebuilds and the local stream feed. */
  scanAll(options?: { pageSize?: number }): AsyncIterable<StoredEvent[]>;
}

// ---------------------------------------------------------------------------
// The VM directory and device claims (one item per VM)

export type VmState = 'running' | 'stopped';

/**
 * The image id of a claim that holds a device for a disk this service did not attach
 * (an operator's disk found on the host): allocation skips it like any other claim.
 */
export const FOREIGN_DISK = 0;

/** A device of a VM held by an image. Only the item's conditional write hands these out. */
export interface DeviceClaim {
  imageId: number;
  since: string; // ISO time the claim was taken; the reconciler ages stale claims by it
}

export interface VmRecord {
  vmId: number;
  userId: number;
  hostId?: string; // unknown until the VM's first state event
  domain?: string;
  state?: VmState; // undefined: known only from a boot-time disk claim, never seen running
  stateTime?: string; // the time of the newest state event applied (orders redeliveries)
  devices: Record<string, DeviceClaim>;
}

export type ClaimResult =
  | { ok: true }
  | { ok: false; reason: 'taken' } // someone holds that device: pick another and try again
  | { ok: false; reason: 'full' } // the VM has the maximum number of storage disks
  | { ok: false; reason: 'other_owner' }; // the VM belongs to another user

export interface VmStateChange {
  vmId: number;
  userId: number;
  domain: string;
  hostId: string;
  state: VmState;
  time: string; // ISO time on the host when the state changed
}

export interface VmDirectory {
  /** Strongly consistent: ownership and claims must be exact. */
  get(vmId: number): Promise<VmRecord | undefined>;
  /**
   * Gives `dev` of VM `vmId` to `imageId` if nobody holds it and the VM has fewer
   * than `maxDevices` claims. Creates the VM record (owner `userId`) when unknown.
   * Idempotent: claiming a device the same image holds already succeeds.
   */
  claimDevice(vmId: number, userId: number, dev: string, imageId: number, maxDevices: number, now: string): Promise<ClaimResult>;
  /** Frees `dev` if `imageId` holds it; otherwise changes nothing. */
  releaseDevice(vmId: number, dev: string, imageId: number): Promise<void>;
  /**
   * Applies a VM state event unless a newer or equal one was applied (redelivery,
   * reordering). Returns whether it changed the record, and the record after.
   */
  recordState(change: VmStateChange): Promise<{ applied: boolean; record: VmRecord }>;
  /** Every VM record, for the reconciler. */
  list(): Promise<VmRecord[]>;
}

// ---------------------------------------------------------------------------
// Quota ledger: exact storage use per user

export type ReserveResult = { ok: true } | { ok: false; usedMb: number };

export interface QuotaLedger {
  /** Adds `sizeMb` for `imageId` if the total stays <= limitMb. Idempotent per image. */
  reserve(userId: number, imageId: number, sizeMb: number, limitMb: number): Promise<ReserveResult>;
  /** Removes the image's share. Idempotent. */
  /**
   * `sizeMb`, when the caller knows what was reserved (the image's size), saves the
   * read of the ledger: one conditional write, with the read only if it fails.
   */
  release(userId: number, imageId: number, sizeMb?: number): Promise<void>;
  usedMb(userId: number): Promise<number>;
  /** The reconciler's repair: set the ledger to what the event log says. */
  reset(userId: number, images: Record<number, number>): Promise<void>;
}

// ---------------------------------------------------------------------------
// Integer ids, as CC1 has them

export interface IdAllocator {
  nextImageId(): Promise<number>;
}

// ---------------------------------------------------------------------------
// Read model: images by owner (and by id, by VM)

export interface ImageView {
  id: number;
  userId: number;
  name: string;
  description: string;
  diskController: string;
  filesystem: string;
  sizeMb: number;
  state: string; // CC1 state name
  progress: number;
  creationDate: string;
  vmId: number | null;
  diskDev: string | null;
  version: number;
}

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

export interface ImageReadModel {
  /** Writes the view of `event.stateAfter` unless the stored version is the same or newer. */
  apply(event: StoredEvent): Promise<'applied' | 'stale'>;
  listByOwner(userId: number, options: { limit: number; nextToken?: string; includeRevoked?: boolean }): Promise<Page<ImageView>>;
  listAll(options: { limit: number; nextToken?: string; includeRevoked?: boolean }): Promise<Page<ImageView>>;
  listByVm(vmId: number): Promise<ImageView[]>;
}
