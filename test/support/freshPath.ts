/**
 * A PATH as on a fresh Debian machine with Node and Java: the same programs hidden as
 * by ../shared/tools/fresh-path.sh (libvirt, QEMU, parted, fdisk, dosfstools, xfsprogs,
 * ntfs-3g, reiserfsprogs), nothing uninstalled. A temp folder holds a symlink to every
 * other program of the current PATH, first one wins, and becomes the whole PATH.
 * Kept here, not read from ../shared, so the tests do not depend on a folder outside
 * the clone.
 */
import { accessSync, constants, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The hide list of fresh-path.sh, verbatim. */
export const FRESH_MACHINE_HIDDEN =
  /^(parted|partprobe|mkfs\.(vfat|fat|msdos|xfs|ntfs|reiserfs)|mkdosfs|mkntfs|mkreiserfs|xfs_.*|virsh|virt-.*|libvirtd|virtlogd|virtlockd|qemu-.*|sfdisk|fdisk|sgdisk)$/;

export interface FreshPath {
  /** The value for PATH. */
  path: string;
  cleanup(): void;
}

const isExecutableFile = (file: string): boolean => {
  try {
    if (statSync(file).isDirectory()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

export const freshPath = (from = process.env.PATH ?? ''): FreshPath => {
  const dir = mkdtempSync(join(tmpdir(), 'cc1-fresh-path-'));
  const linked = new Set<string>();
  for (const folder of from.split(':').filter(Boolean)) {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of names) {
      if (linked.has(name) || FRESH_MACHINE_HIDDEN.test(name) || !isExecutableFile(join(folder, name))) continue;
      symlinkSync(join(folder, name), join(dir, name));
      linked.add(name);
    }
  }
  return { path: dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
};

/** Whether `tool` is found on `path` (as `command -v` would). */
export const onPath = (tool: string, path = process.env.PATH ?? ''): boolean =>
  path.split(':').filter(Boolean).some((folder) => isExecutableFile(join(folder, tool)));
