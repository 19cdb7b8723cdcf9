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

export type StorageImageState =
  | { status: 'none' }
  | { status: 'adding'; image: ImageFacts }
  | { status: 'failed'; image: ImageFacts; reason: string }
  | { status: 'ok'; image: ImageFacts; attachment: Attachment | null }
  | { status: 'locked'; image: ImageFacts }; // revoked

/** A VM as the VM directory knows it. */
export type VmView = { vmId: number; userId: number; running: boolean };
