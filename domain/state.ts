/**
 * The StorageImage's state and the parties around it, as types: a discriminated union on
 * `status`, so impossible states cannot be written. The decider (storageImage.ts) and
 * the shared rules (policies.ts) both read them.
 */
import type { DiskController, Filesystem } from './catalog';

// ---------------------------------------------------------------------------
// Who causes an event

export type Actor =
  | { kind: 'user'; userId: number }
  | { kind: 'admin'; userId: number; reason?: AdminReason }
  | { kind: 'portal'; userId: number } // a trusted portal service acting for a user
  | { kind: 'system'; reason: SystemReason };

export type SystemReason = 'vm-stopped' | 'disk-file' | 'reconciled' | 'forced';

/** Why an admin acted, when it is more than an ordinary command: a repair that overrides a rule. */
export type AdminReason = 'forced';

/** As stored on an event: `{kind, userId?, reason?}`. */
export type Cause = { kind: Actor['kind']; userId?: number; reason?: string };

export type AttachMode = 'hot' | 'boot';

export type ImageFacts = {
  imageId: number;
  userId: number;
  name: string;
  description: string;
  diskController: DiskController;
  filesystem: Filesystem;
  sizeMb: number;
  creationDate: string;
  /** The storage the disk file is on, from DiskReady; absent before (and for old images): `default`. */
  storage?: string;
};

export type Attachment =
  | { phase: 'attaching'; vmId: number; diskDev: string; attachId: string; since: string }
  | { phase: 'attached'; vmId: number; diskDev: string; attachId: string; mode: AttachMode; since: string };

/**
 * A host operation whose intent is committed and whose outcome is not (the saga's open
 * step, docs/event-store.md): what it reserved is held, and only a command naming its
 * `opId` ends it.
 */
export type OpenOperation = { type: 'resize'; opId: string; fromMb: number; toMb: number; since: string };

export type StorageImageState =
  | { status: 'none' }
  /** `fileOp`: the operation making the disk file (Created's, or the last DiskRetried's); only its outcome counts. */
  | { status: 'adding'; image: ImageFacts; fileOp?: string }
  | { status: 'failed'; image: ImageFacts; reason: string }
  | { status: 'ok'; image: ImageFacts; attachment: Attachment | null; operation?: OpenOperation }
  /** Revoked; `fileRemoved` once the storage host removed its disk file (the revoke's outcome). */
  | { status: 'locked'; image: ImageFacts; fileRemoved?: boolean };

/** A VM as the VM directory knows it. */
export type VmView = { vmId: number; userId: number; running: boolean };
