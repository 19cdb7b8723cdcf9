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

/** The program that makes a filesystem, and the Debian package that ships it. */
export interface MkfsTool {
  tool: string;
  debianPackage: string;
}

/**
 * What each filesystem needs on the storage host (raw needs nothing but `truncate`).
 * The storage host reports which of these tools it has (CC1-StorageTools), and a
 * filesystem whose tool is missing is refused when asked for (SPEC 4.5).
 */
export const MKFS_TOOLS: Record<Filesystem, MkfsTool | undefined> = {
  raw: undefined,
  fat32: { tool: 'mkfs.vfat', debianPackage: 'dosfstools' },
  ext4: { tool: 'mkfs.ext4', debianPackage: 'e2fsprogs' },
  reiserfs: { tool: 'mkfs.reiserfs', debianPackage: 'reiserfsprogs' },
  xfs: { tool: 'mkfs.xfs', debianPackage: 'xfsprogs' },
  ntfs: { tool: 'mkfs.ntfs', debianPackage: 'ntfs-3g' },
};

/** Every mkfs tool of the catalogue, once each. */
export const ALL_MKFS_TOOLS: readonly string[] = [...new Set(Object.values(MKFS_TOOLS).flatMap((t) => (t ? [t.tool] : [])))];

/** Whether a host that has `tools` (program names) can make `filesystem`. */
export const canMake = (filesystem: Filesystem, tools: ReadonlySet<string>): boolean => {
  const needed = MKFS_TOOLS[filesystem];
  return needed === undefined || tools.has(needed.tool);
};

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
