/**
 * What the code that runs commands needs to know of the SSM documents, without their
 * scripts: keys and default names, parameters (with their allowedPatterns), timeouts and
 * exit codes. Lambda bundles import this module only; the scripts themselves
 * (adapters/ssm/scripts/*.sh) are read from disk by ./index.ts, which only CDK synth,
 * the local Run Command endpoint and the tests load (a bundle has no .sh files).
 */
import { PATTERNS } from '../patterns';

export { PATTERNS };

export interface SsmParameter {
  type: 'String';
  description: string;
  allowedPattern: string;
  default?: string;
}

export interface SsmRunShellScriptStep {
  action: 'aws:runShellScript';
  name: string;
  inputs: { runCommand: string[]; interpolationType: 'ENV_VAR'; timeoutSeconds?: number };
}

export interface SsmCommandDocument {
  schemaVersion: '2.2';
  description: string;
  parameters: Record<string, SsmParameter>;
  mainSteps: SsmRunShellScriptStep[];
}

/**
 * Exit codes of the documents' scripts (the step's ResponseCode). The one source:
 * scripts/lib/common.sh spells them as EXIT_<NAME> variables, and the loader refuses
 * to build the documents when those differ from these.
 */
export const EXIT = {
  ok: 0,
  /** A value failed the in-script re-check (defence in depth after allowedPattern). */
  badParameter: 2,
  /** virsh: "failed to get domain" (not defined / not running on this host). */
  unknownDomain: 10,
  /** virsh or a file tool ran and failed. */
  failed: 11,
  /** virsh said yes but `domblklist` disagrees (e.g. a detach the guest did not complete). */
  notConfirmed: 12,
} as const;

/** Keys the adapters use; the deployed document names come from configuration. */
export type DocumentKey =
  | 'attachDisk'
  | 'detachDisk'
  | 'listDisks'
  | 'blockResize'
  | 'createDiskFile'
  | 'deleteDiskFile'
  | 'resizeDiskFile'
  | 'storageFreeSpace'
  | 'storageTools';

/** Default names (CDK may name them otherwise and pass the names to the adapters). */
export const DEFAULT_DOCUMENT_NAMES: Record<DocumentKey, string> = {
  attachDisk: 'CC1-AttachDisk',
  detachDisk: 'CC1-DetachDisk',
  listDisks: 'CC1-ListDisks',
  blockResize: 'CC1-BlockResize',
  createDiskFile: 'CC1-CreateDiskFile',
  deleteDiskFile: 'CC1-DeleteDiskFile',
  resizeDiskFile: 'CC1-ResizeDiskFile',
  storageFreeSpace: 'CC1-StorageFreeSpace',
  storageTools: 'CC1-StorageTools',
};

/** A document but its script: its one step is named by the key and runs scripts/<key>.sh. */
export interface DocumentDefinition {
  description: string;
  parameters: Record<string, SsmParameter>;
  timeoutSeconds: number;
}

const param = (description: string, allowedPattern: string, defaultValue?: string): SsmParameter =>
  defaultValue === undefined
    ? { type: 'String', description, allowedPattern }
    : { type: 'String', description, allowedPattern, default: defaultValue };

const libvirtUriParam = param('libvirt connection URI on the host', PATTERNS.libvirtUri, 'qemu:///system');

export const DEFINITIONS: Record<DocumentKey, DocumentDefinition> = {
  attachDisk: {
    description: 'CC1: hot-plug a raw disk file into a running libvirt domain (virsh attach-disk --live).',
    parameters: {
      Domain: param('libvirt domain name, vm-<vmId>-<userId>', PATTERNS.domain),
      File: param('absolute path of the raw disk file', PATTERNS.file),
      Dev: param('guest device, e.g. vdb', PATTERNS.dev),
      Bus: param('disk bus (controller)', PATTERNS.bus),
      LibvirtUri: libvirtUriParam,
    },
    timeoutSeconds: 60,
  },
  detachDisk: {
    description: 'CC1: hot-unplug a disk from a running libvirt domain (virsh detach-disk --live), confirmed by domblklist.',
    parameters: {
      Domain: param('libvirt domain name, vm-<vmId>-<userId>', PATTERNS.domain),
      Dev: param('guest device, e.g. vdb', PATTERNS.dev),
      LibvirtUri: libvirtUriParam,
      WaitSeconds: param('seconds to wait for the guest to release the device (0..59)', '^([0-9]|[1-5][0-9])$', '10'),
    },
    timeoutSeconds: 90,
  },
  listDisks: {
    description: 'CC1: list the disks of a libvirt domain (virsh domblklist --details), one tab-separated line per disk.',
    parameters: {
      Domain: param('libvirt domain name, vm-<vmId>-<userId>', PATTERNS.domain),
      LibvirtUri: libvirtUriParam,
    },
    timeoutSeconds: 60,
  },
  blockResize: {
    description: 'CC1: grow a disk of a running libvirt domain live (virsh blockresize), confirmed by domblkinfo. Never shrinks.',
    parameters: {
      Domain: param('libvirt domain name, vm-<vmId>-<userId>', PATTERNS.domain),
      Dev: param('guest device, e.g. vdb', PATTERNS.dev),
      SizeMb: param('new size in MiB (1..9999999), not smaller than the disk', PATTERNS.sizeMb),
      LibvirtUri: libvirtUriParam,
    },
    timeoutSeconds: 60,
  },
  createDiskFile: {
    description:
      'CC1: make the raw disk file <StoragePath>/<UserId>/<ImageId> (truncate; mkfs at a 1 MiB offset and an msdos label unless raw). Idempotent.',
    parameters: {
      StoragePath: param('storage root on the storage host', PATTERNS.file),
      UserId: param('owner user id', PATTERNS.id),
      ImageId: param('storage image id', PATTERNS.id),
      SizeMb: param('size in MiB (1..9999999)', PATTERNS.sizeMb),
      Filesystem: param('filesystem to make inside one msdos partition, or raw', PATTERNS.filesystem),
    },
    timeoutSeconds: 900,
  },
  deleteDiskFile: {
    description: 'CC1: remove the disk file <StoragePath>/<UserId>/<ImageId> (and leftovers of an unfinished create). Idempotent.',
    parameters: {
      StoragePath: param('storage root on the storage host', PATTERNS.file),
      UserId: param('owner user id', PATTERNS.id),
      ImageId: param('storage image id', PATTERNS.id),
    },
    timeoutSeconds: 120,
  },
  resizeDiskFile: {
    description: 'CC1: grow the raw disk file <StoragePath>/<UserId>/<ImageId> to SizeMb MiB (truncate; never shrinks). Idempotent.',
    parameters: {
      StoragePath: param('storage root on the storage host', PATTERNS.file),
      UserId: param('owner user id', PATTERNS.id),
      ImageId: param('storage image id', PATTERNS.id),
      SizeMb: param('new size in MiB (1..9999999), not smaller than the file', PATTERNS.sizeMb),
    },
    timeoutSeconds: 120,
  },
  storageFreeSpace: {
    description: 'CC1: print the free space (MiB) of the storage root <StoragePath> as a line CC1_FREE_MB=<n> (df -Pm). Creates the folder when missing.',
    parameters: {
      StoragePath: param('storage root on the storage host', PATTERNS.file),
    },
    timeoutSeconds: 60,
  },
  storageTools: {
    description: 'CC1: print the mkfs tools the storage host has (as CreateDiskFile finds them, on PATH), one line CC1_MKFS=<tool> each.',
    parameters: {},
    timeoutSeconds: 60,
  },
};
