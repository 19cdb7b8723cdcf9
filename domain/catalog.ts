/**
 * CC1's catalogues: disk controllers, filesystems and image states, with the integer
 * ids CC1 used on its wire. This is the only place these ids are written down.
 */

export const DISK_CONTROLLERS = [
  { id: 0, name: 'scsi', liveAttach: false },
  { id: 1, name: 'virtio', liveAttach: true },
  { id: 2, name: 'ide', liveAttach: false },
  { id: 3, name: 'sata', liveAttach: false },
  { id: 4, name: 'usb', liveAttach: true },
] as const;
export type DiskController = (typeof DISK_CONTROLLERS)[number]['name'];

export const FILESYSTEMS = [
  { id: 0, name: 'raw' },
  { id: 2, name: 'fat32' },
  { id: 5, name: 'ext4' },
  { id: 6, name: 'reiserfs' },
  { id: 7, name: 'xfs' },
  { id: 8, name: 'ntfs' },
] as const;
export type Filesystem = (typeof FILESYSTEMS)[number]['name'];

export const IMAGE_STATES = [
  { id: 0, name: 'ok' },
  { id: 1, name: 'locked' },
  { id: 2, name: 'adding' },
  { id: 3, name: 'failed' },
  { id: 4, name: 'unavailable' },
  { id: 5, name: 'formatting' },
] as const;
export type ImageStateName = (typeof IMAGE_STATES)[number]['name'];

const byName = <T extends { name: string }>(list: readonly T[], name: unknown): T | undefined =>
  list.find((entry) => entry.name === name);
const byId = <T extends { id: number }>(list: readonly T[], id: unknown): T | undefined =>
  list.find((entry) => entry.id === id);

export const isDiskController = (v: unknown): v is DiskController => byName(DISK_CONTROLLERS, v) !== undefined;
export const isFilesystem = (v: unknown): v is Filesystem => byName(FILESYSTEMS, v) !== undefined;

export const diskControllerId = (name: DiskController): number => byName(DISK_CONTROLLERS, name)!.id;
export const diskControllerById = (id: unknown): DiskController | undefined => byId(DISK_CONTROLLERS, id)?.name;
export const isLiveAttachable = (name: DiskController): boolean => byName(DISK_CONTROLLERS, name)!.liveAttach;

export const filesystemId = (name: Filesystem): number => byName(FILESYSTEMS, name)!.id;
export const filesystemById = (id: unknown): Filesystem | undefined => byId(FILESYSTEMS, id)?.name;

export const imageStateId = (name: ImageStateName): number => byName(IMAGE_STATES, name)!.id;
