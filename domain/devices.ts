/**
 * Guest device naming, in one place.
 *
 * One namespace per VM. The prefix follows the bus (`vd` virtio, `hd` ide, `sd` for
 * scsi/sata/usb); letters start at `b` because `a` is the system disk, `sdz` is the
 * CD-ROM of CC1's domain template, and IDE has four devices in all (`hda`..`hdd`).
 * The first free letter wins. CC1 named every device `sd<letter>` and skipped `sdb`;
 * we do neither.
 */
import type { DiskController } from './catalog';
import { DomainError } from './errors';

export const DEFAULT_MAX_DISKS_PER_VM = 10;

const LETTERS = 'bcdefghijklmnopqrstuvwxyz'.split('');

export const devicePrefix = (bus: DiskController): 'vd' | 'hd' | 'sd' =>
  bus === 'virtio' ? 'vd' : bus === 'ide' ? 'hd' : 'sd';

/** The device names a storage disk on this bus may take, in the order they are given. */
export const candidateDevices = (bus: DiskController): string[] => {
  const prefix = devicePrefix(bus);
  if (prefix === 'hd') return ['hdb', 'hdc', 'hdd'];
  const letters = prefix === 'sd' ? LETTERS.filter((l) => l !== 'z') : LETTERS;
  return letters.map((l) => `${prefix}${l}`);
};

export const isStorageDevice = (dev: string): boolean =>
  (['virtio', 'ide', 'scsi'] as const).some((bus) => candidateDevices(bus).includes(dev));

/**
 * The first free device for `bus` on a VM whose storage disks use `taken`.
 * Refuses with `storage_image_attach` when the VM has `maxDisks` storage disks
 * already or no name is left on that bus.
 */
export const allocateDevice = (
  bus: DiskController,
  taken: Iterable<string>,
  maxDisks: number = DEFAULT_MAX_DISKS_PER_VM,
): string => {
  const used = new Set(taken);
  if (used.size >= maxDisks) {
    throw new DomainError('storage_image_attach', `The VM already has ${used.size} storage disks (maximum ${maxDisks}).`);
  }
  const free = candidateDevices(bus).find((dev) => !used.has(dev));
  if (!free) {
    throw new DomainError('storage_image_attach', `No free ${devicePrefix(bus)}* device is left on the VM for bus ${bus}.`);
  }
  return free;
};
