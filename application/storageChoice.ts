/**
 * Several storages, and where a new disk goes: the emptiest one that can hold it
 * (CC1 took the first storage, however full). Pure: the disk-file reaction asks each
 * storage host for its free space and passes the answers here.
 */

/** One storage: a folder shared with the hypervisors, and the host that makes its files. */
export interface StorageLocation {
  /** `^[a-z0-9-]{1,32}$`; recorded in StorageImageDiskReady. */
  id: string;
  /** Storage root as the storage host and the hypervisors see it. */
  path: string;
  /** SSM managed instance id of the host that makes and removes its files. */
  hostId: string;
}

/** The storage of images whose DiskReady names none (written before there were several). */
export const DEFAULT_STORAGE = 'default';

/**
 * The storage an image lives on: the one with that id; no id (an old image) means
 * `default`, or the first configured when none is called so. An id no longer
 * configured is a configuration error.
 */
export const storageOf = (storages: readonly StorageLocation[], id: string | undefined): StorageLocation => {
  const found = storages.find((s) => s.id === (id ?? DEFAULT_STORAGE)) ?? (id === undefined ? storages[0] : undefined);
  if (!found) throw new Error(`storage "${id ?? DEFAULT_STORAGE}" is not configured (STORAGES)`);
  return found;
};

/** `<storage path>/<user id>/<image id>`. */
export const diskFilePath = (storages: readonly StorageLocation[], ref: { userId: number; imageId: number; storage?: string }): string =>
  `${storageOf(storages, ref.storage).path}/${ref.userId}/${ref.imageId}`;

/** What a storage host said about its room; `undefined`: it did not answer. */
export interface StorageRoom {
  id: string;
  freeMb: number | undefined;
}

export type StorageChoice =
  | { ok: true; storage: string }
  /** `unanswered`: no storage answered at all (try again later); `full`: none can hold it. */
  | { ok: false; why: 'unanswered' | 'full'; reason: string };

/**
 * The storage with the most free space that can hold `sizeMb`; on a tie the first in
 * configuration order (the order of `rooms`). Storages that did not answer are skipped.
 */
export const chooseStorage = (rooms: readonly StorageRoom[], sizeMb: number): StorageChoice => {
  const answered = rooms.filter((r): r is { id: string; freeMb: number } => r.freeMb !== undefined);
  if (answered.length === 0) return { ok: false, why: 'unanswered', reason: 'no storage host answered' };
  let best: { id: string; freeMb: number } | undefined;
  for (const room of answered) {
    if (room.freeMb >= sizeMb && (!best || room.freeMb > best.freeMb)) best = room;
  }
  if (best) return { ok: true, storage: best.id };
  const most = Math.max(...answered.map((r) => r.freeMb));
  return { ok: false, why: 'full', reason: `no storage has room for ${sizeMb} MB (the emptiest has ${most} MB free)` };
};
