/**
 * Ports to the stores. adapters/dynamodb implements them; every command step is ONE
 * DynamoDB TransactWriteItems (the event, the stream head, the read-model row, the
 * device claims, the quota ledger), so the same code runs on AWS and on DynamoDB Local.
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

/** Another attach holds that device of the VM, or the VM is full or someone else's: nothing was written. */
export class DeviceClaimError extends Error {
  constructor(
    readonly vmId: number,
    readonly dev: string,
    /** `not_held`: a release found the device held by another attach, or free; `vm_state`: the VM is not (or is) running, as the claim required. */
    readonly reason: 'taken' | 'full' | 'other_owner' | 'not_held' | 'vm_state',
  ) {
    super(`device ${dev} of VM ${vmId}: ${reason}`);
    this.name = 'DeviceClaimError';
  }
}

/** The user's quota cannot hold the image: nothing was written. */
export class QuotaExceededError extends Error {
  constructor(
    readonly userId: number,
    readonly usedMb: number,
    readonly limitMb: number,
    /** The user's own limit, as the refused write found it (absent: none is set). */
    readonly ownLimitMb?: number,
  ) {
    super(`user ${userId} uses ${usedMb} MB of ${limitMb} MB`);
    this.name = 'QuotaExceededError';
  }
}

/** A stored event with the aggregate state right after it (what a projection needs). */
export type StoredEvent = StorageImageEvent & {
  stateAfter: StorageImageState;
  /** The id of the request (or reaction) that caused it: logs of the reactions to it carry it too. */
  correlationId?: string;
};

/** One stream's part of a command step: `event` becomes version `expectedVersion + 1`. */
export interface StreamAppend {
  streamId: string;
  expectedVersion: number;
  event: NewEvent;
  stateAfter: StorageImageState;
}

/**
 * A write request's first effect, bound to its scoped Idempotency-Key in the same
 * transaction (SPEC 3): a retry that finds the key bound answers the image it names.
 */
export interface WriteBinding {
  /** The caller-, method- and route-scoped key (a hash; never the raw header). */
  key: string;
  imageId: number;
}

/** The key of a write was bound already (by the first try of this request): nothing was written. */
export class WriteBoundError extends Error {
  constructor(
    readonly key: string,
    /** The image the first try made. */
    readonly imageId: number,
  ) {
    super(`write ${key} was done already (image ${imageId})`);
    this.name = 'WriteBoundError';
  }
}

/** A host operation whose intent committed and whose outcome has not (application/saga.ts). */
export interface OpenOperationRecord {
  imageId: number;
  /** At most one operation per image and slot is open. */
  slot: 'file' | 'resize' | 'removeFile';
  opId: string;
  since: string;
}

/** The writes of one command step besides the events, committed with them or not at all. */
export interface StepEffects {
  /** The saga's open-operation items, opened by an intent and closed by its outcome (saga.ts). */
  operations?: { open: OpenOperationRecord[]; close: { imageId: number; slot: OpenOperationRecord['slot'] }[] };
  /** Binds the request's Idempotency-Key to its effect: refused if bound already. */
  binding?: WriteBinding;
  /** Devices given to an attach (`attachId`): refused if taken, if the VM is full or another user's. */
  claims?: {
    vmId: number;
    userId: number;
    dev: string;
    imageId: number;
    attachId: string;
    maxDevices: number;
    /** The VM's recorded state the claim requires, in the write's condition: a hot attach `running`, a boot attach `not-running`. */
    vmState?: 'running' | 'not-running';
    /** The VM's state time as read for this claim (DeviceClaim.vmTime). */
    vmTime?: string;
  }[];
  /** Devices freed: only if that attach holds them. */
  releases?: { vmId: number; dev: string; attachId: string }[];
  /** An image's size counted against its owner's quota (refused over the limit), or no longer. */
  quota?: {
    reserve?: { userId: number; imageId: number; sizeMb: number } & QuotaLimit;
    /** An image counted at `fromMb` now counts `toMb` (larger): the difference must fit. */
    grow?: { userId: number; imageId: number; fromMb: number; toMb: number } & QuotaLimit;
    release?: { userId: number; imageId: number; sizeMb: number };
    /** An image counted at `fromMb` counts `toMb` (smaller) again: a resize that failed gives its growth back. */
    shrink?: { userId: number; imageId: number; fromMb: number; toMb: number };
  };
}

/**
 * The limit a quota write is checked against: the deployment's default for a user
 * without an own limit (`ownLimit` absent: the write also requires that none is set), or
 * the user's own limit as last read (`ownLimit`: the write requires it unchanged).
 */
export interface QuotaLimit {
  limitMb: number;
  ownLimit?: boolean;
}

export interface EventStore {
  /** One consistent read of the stream head, whatever the stream's length. */
  load(streamId: string): Promise<LoadedStream>;
  /**
   * Appends every event (each at its stream's next version, guarded by the head) with
   * the read-model rows and `effects`, in one transaction. Throws ConcurrencyError,
   * DeviceClaimError or QuotaExceededError when a condition fails: then nothing was written.
   */
  commit(appends: StreamAppend[], effects?: StepEffects): Promise<StoredEvent[]>;
  /** A page of the stream's events in version order, from `fromVersion` (default 1). */
  readStream(streamId: string, options?: { fromVersion?: number; limit?: number }): Promise<{ events: StoredEvent[]; nextVersion?: number }>;
  /** Every event of every stream, in pages, for rebuilds (a read of the log, not a stream). */
  scanAll(options?: { pageSize?: number }): AsyncIterable<StoredEvent[]>;
  /** Every open host operation (intent committed, outcome not), for the reconciler. */
  openOperations(): Promise<OpenOperationRecord[]>;
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
  /** The attach that holds the device (FOREIGN_DISK claims: `foreign`). */
  attachId: string;
  since: string; // ISO time the claim was taken; the reconciler ages stale claims by it
  /** The VM's state time (host clock) as the claimer read it: a stop at or before it predates this attach, and leaves it. */
  vmTime?: string;
}

export interface VmRecord {
  vmId: number;
  userId: number;
  hostId?: string; // unknown until the VM's first state event
  domain?: string;
  state?: VmState; // undefined: known only from a boot-time disk claim, never seen running
  stateTime?: string; // the time of the newest state event applied (orders redeliveries)
  /** Why it stopped (`saved` keeps its disks; any other stop detaches them). */
  stopReason?: string;
  devices: Record<string, DeviceClaim>;
}

export interface VmStateChange {
  vmId: number;
  userId: number;
  domain: string;
  hostId: string;
  state: VmState;
  time: string; // ISO time on the host when the state changed
  reason?: string; // why it stopped: `migrated` and `saved` keep the disks
}

export interface VmDirectory {
  /** Strongly consistent: ownership and claims must be exact. */
  get(vmId: number): Promise<VmRecord | undefined>;
  /** Holds `dev` for a disk this service did not attach (found on the host), if free. */
  claimForeignDisk(vmId: number, userId: number, dev: string, now: string): Promise<boolean>;
  /** Frees a FOREIGN_DISK claim (that disk left the host). */
  releaseForeignDisk(vmId: number, dev: string): Promise<void>;
  /**
   * Applies a VM state event unless a newer or equal one was applied (redelivery,
   * reordering), compared in the write's condition, whichever host sent it; a
   * `migrated` stop never marks the VM stopped (the VM runs on, on its new host).
   * Returns whether it changed the record, and the record after.
   */
  recordState(change: VmStateChange): Promise<{ applied: boolean; record: VmRecord }>;
  /** Every VM record, for the reconciler. */
  list(): Promise<VmRecord[]>;
}

// ---------------------------------------------------------------------------
// Quota ledger: exact storage use per user (written only inside command steps)

export interface QuotaLedger {
  usedMb(userId: number): Promise<number>;
  /** The user's use and own limit (absent: the default holds), read consistently. */
  entry(userId: number): Promise<{ usedMb: number; limitMb?: number }>;
  /** Sets the user's own limit, or removes it (null). */
  setLimit(userId: number, limitMb: number | null, audit: { by: string; at: string }): Promise<void>;
}

// ---------------------------------------------------------------------------
// The reconciler's place across runs (one small control item)

/** Where the last whole-directory run of the reconciler got to; `version` guards every move. */
export interface ReconcilerCheckpoint {
  /** The last host checked (in host id order) by a run that did not reach every host; absent: start from the top. */
  afterHost?: string;
  /** 0 when the item was never written. */
  version: number;
}

export interface ReconcilerCursor {
  /** Strongly consistent. */
  read(): Promise<ReconcilerCheckpoint>;
  /**
   * Moves the cursor to `afterHost` (undefined clears it) if it is still at version
   * `expected`; false when another run moved it since. Returns the new version, or false.
   */
  write(afterHost: string | undefined, expected: number): Promise<number | false>;
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
  /** When the attach was recorded (null when detached). */
  attachedAt: string | null;
}

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

/** What a list may be narrowed to (SPEC 4.7): one state, one VM, or both. */
export interface ListFilter {
  state?: string; // a CC1 state name
  vmId?: number;
}

export interface ListOptions extends ListFilter {
  limit: number;
  nextToken?: string;
  includeRevoked?: boolean;
}

export interface ImageReadModel {
  /** Writes the view of `event.stateAfter` unless the stored version is the same or newer. */
  apply(event: StoredEvent): Promise<'applied' | 'stale'>;
  /**
   * One user's images. Unfiltered: a consistent read (read-your-writes). Filtered: an
   * index of the read model, eventually consistent (docs/api.md).
   */
  listByOwner(userId: number, options: ListOptions): Promise<Page<ImageView>>;
  listAll(options: ListOptions): Promise<Page<ImageView>>;
  listByVm(vmId: number): Promise<ImageView[]>;
}
