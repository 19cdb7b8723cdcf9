/**
 * Which filesystems this deployment can make (SPEC 4.5). A filesystem other than raw
 * needs its mkfs tool on a storage host; each host reports the tools it has
 * (StorageHost.mkfsTools, the CC1-StorageTools document). A filesystem that no
 * configured storage host can make is refused when asked for, naming the missing tool
 * and its Debian package, instead of being accepted and ending `failed` later.
 *
 * Reports are cached per process for a minute: tools change when an operator installs
 * a package, not between two requests, and each report is an SSM round trip.
 */
import { FILESYSTEMS, MKFS_TOOLS, canMake, type Filesystem } from '../domain/catalog';
import { DomainError } from '../domain/errors';
import { HostCommandError, type StorageHost } from './ports';

export const TOOLS_CACHE_MS = 60_000;

export interface FilesystemAvailability {
  id: number;
  name: Filesystem;
  available: boolean;
}

/** Milliseconds since the epoch; injected so tests can step over the cache's minute. */
export type Clock = () => number;

interface Report {
  at: number;
  tools: Promise<ReadonlySet<string>>;
}

// Keyed by the StorageHost object: one per container, so one cache per process.
const reports = new WeakMap<StorageHost, Map<string, Report>>();

const reportOf = (host: StorageHost, storage: string, now: Clock): Promise<ReadonlySet<string>> => {
  let byStorage = reports.get(host);
  if (!byStorage) reports.set(host, (byStorage = new Map()));
  const cached = byStorage.get(storage);
  if (cached && now() - cached.at < TOOLS_CACHE_MS) return cached.tools;
  // The promise is cached, so concurrent requests share one SSM call; a failure is not kept.
  const tools = host.mkfsTools(storage).then((list) => new Set(list));
  const report = { at: now(), tools };
  byStorage.set(storage, report);
  tools.catch(() => {
    if (byStorage.get(storage) === report) byStorage.delete(storage);
  });
  return tools;
};

const UNAVAILABLE = 'The storage host did not say which filesystems it can make; retry later.';

/**
 * The tool sets of the storages whose hosts answered, and whether one did not. A host
 * that cannot be asked is left out (the others may still make the disk); none: 503.
 */
const askHosts = async (host: StorageHost, now: Clock): Promise<{ answered: Array<ReadonlySet<string>>; someSilent: boolean }> => {
  const settled = await Promise.allSettled(host.storageIds.map((id) => reportOf(host, id, now)));
  const answered = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  for (const r of settled) {
    if (r.status === 'rejected' && !(r.reason instanceof HostCommandError)) throw r.reason; // a bug, not a host
  }
  if (!answered.length) throw new DomainError('hypervisor_unavailable', UNAVAILABLE);
  return { answered, someSilent: answered.length < settled.length };
};

/** Every filesystem of the catalogue, with whether a configured storage host can make it. */
export const filesystemAvailability = async (host: StorageHost, now: Clock = Date.now): Promise<FilesystemAvailability[]> => {
  const { answered } = await askHosts(host, now);
  return FILESYSTEMS.map(({ id, name }) => ({ id, name, available: answered.some((tools) => canMake(name, tools)) }));
};

/**
 * Refuses (409 `filesystem_unavailable`) a filesystem that no configured storage host
 * can make. Raw needs no tool and asks no host.
 */
export const requireFilesystem = async (host: StorageHost, filesystem: Filesystem, now: Clock = Date.now): Promise<void> => {
  const needed = MKFS_TOOLS[filesystem];
  if (needed === undefined) return;
  const { answered, someSilent } = await askHosts(host, now);
  if (answered.some((tools) => canMake(filesystem, tools))) return;
  // A host that did not answer might have the tool: no refusal on a guess.
  if (someSilent) throw new DomainError('hypervisor_unavailable', UNAVAILABLE);
  const where = host.storageIds.length > 1 ? 'every storage host' : 'the storage host';
  throw new DomainError(
    'filesystem_unavailable',
    `This deployment cannot make ${filesystem} disks: ${needed.tool} is missing on ${where} (Debian package ${needed.debianPackage}).`,
  );
};
