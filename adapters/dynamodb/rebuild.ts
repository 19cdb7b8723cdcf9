/**
 * Rebuilds from the event log.
 * - `rebuildImages`: a fresh images table `-v<N+1>` (definition from tables.ts), every
 *   event replayed through the same `apply` the projector uses, verified against the
 *   log's stream heads, then `readmodel#images` switched to it, then a catch-up replay
 *   for events appended meanwhile. The old table is kept (delete it by hand when happy).
 * - `quotaFromLog` / `rebuildQuotaLedgers`: the exact quota use per user from the log.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ScanCommand, paginateScan, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { streamIdOf, type StorageImageState } from '../../domain/storageImage';
import type { EventStore, StoredEvent } from '../../application/storePorts';
import { ensureTable, listTables } from './admin';
import type { DynamoQuotaLedger } from './quotaLedger';
import { DynamoImageReadModel, type ReadModelLocator } from './readModel';
import { imagesGenerationOf, imagesTable, tableName } from './tables';

export interface RebuildImagesOptions {
  client: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  prefix: string;
  events: Pick<EventStore, 'scanAll'>;
  locator: ReadModelLocator;
  /** Parallel applies (default 16). */
  concurrency?: number;
  /**
   * Wait before the catch-up replay, so that every projector's locator cache has
   * expired and writes to the new table (default: locator TTL + 1 s).
   */
  catchUpDelayMs?: number;
  log?: (message: string) => void;
}

export interface RebuildReport {
  from: string;
  to: string;
  events: number;
  images: number;
  catchUp: { events: number; applied: number };
}

export class RebuildVerificationError extends Error {
  constructor(
    readonly table: string,
    readonly problems: string[],
  ) {
    super(`rebuilt table ${table} does not match the log: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`);
    this.name = 'RebuildVerificationError';
  }
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

const forEachLimit = async <T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> => {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
};

/**
 * Replays the whole log into `model`; returns the events seen, the rows written and each
 * stream's head version. A row holds only its stream's newest state (every event
 * carries its stateAfter, and `apply` keeps the newer version), so of each page only
 * the newest event per stream is applied: the others would be overwritten by it.
 * Events at or below `known` (heads a previous replay into the same model wrote) are
 * skipped the same way: the row already holds them or newer.
 */
export const replayInto = async (
  events: Pick<EventStore, 'scanAll'>,
  model: DynamoImageReadModel,
  concurrency = 16,
  known?: ReadonlyMap<string, { version: number }>,
): Promise<{ events: number; applied: number; heads: Map<string, { version: number; state: StorageImageState }> }> => {
  const heads = new Map<string, { version: number; state: StorageImageState }>();
  let count = 0;
  let applied = 0;
  for await (const page of events.scanAll()) {
    count += page.length;
    const newest = new Map<string, StoredEvent>();
    for (const e of page) {
      const head = heads.get(e.streamId);
      if (!head || head.version < e.version) heads.set(e.streamId, { version: e.version, state: e.stateAfter });
      if ((known?.get(e.streamId)?.version ?? 0) >= e.version) continue;
      const latest = newest.get(e.streamId);
      if (!latest || latest.version < e.version) newest.set(e.streamId, e);
    }
    await forEachLimit([...newest.values()], concurrency, async (e: StoredEvent) => {
      if ((await model.apply(e)) === 'applied') applied++;
    });
  }
  return { events: count, applied, heads };
};

const scanRows = async (doc: DynamoDBDocumentClient, table: string): Promise<Record<string, unknown>[]> => {
  const rows: Record<string, unknown>[] = [];
  for await (const page of paginateScan({ client: doc }, { TableName: table, ConsistentRead: true })) rows.push(...(page.Items ?? []));
  return rows;
};

/**
 * The generation to rebuild into: the first one after the current that does not exist
 * or exists empty. An operator may deploy the next generation with CloudFormation
 * first (PITR, deletion protection, retained); the rebuild then fills that table
 * instead of making an unmanaged one.
 */
const nextGeneration = async (client: DynamoDBClient, doc: DynamoDBDocumentClient, prefix: string, current: number): Promise<number> => {
  const existing = new Set(
    (await listTables(client)).filter((n) => n.startsWith(`${prefix}-images-v`)).map((n) => imagesGenerationOf(n) ?? 0),
  );
  for (let generation = current + 1; ; generation++) {
    if (!existing.has(generation)) return generation;
    const out = await doc.send(new ScanCommand({ TableName: tableName(prefix, imagesTable(generation)), Limit: 1 }));
    if ((out.Items ?? []).length === 0) return generation;
  }
};

export const rebuildImages = async (options: RebuildImagesOptions): Promise<RebuildReport> => {
  const { client, doc, prefix, events, locator } = options;
  const log = options.log ?? (() => undefined);
  const concurrency = options.concurrency ?? 16;

  const from = (await locator.pointer())?.table ?? locator.defaultTable;
  const generation = await nextGeneration(client, doc, prefix, imagesGenerationOf(from) ?? 1);
  const def = imagesTable(generation);
  const to = tableName(prefix, def);
  log(`creating ${to} (reads use ${from})`);
  await ensureTable(client, prefix, def);

  const model = new DynamoImageReadModel(doc, to);
  const replay = await replayInto(events, model, concurrency);
  log(`replayed ${replay.events} events of ${replay.heads.size} streams`);

  // Verify: one row per stream, at the stream's head version.
  const rows = await scanRows(doc, to);
  const problems: string[] = [];
  const expected = [...replay.heads].filter(([, h]) => h.state.status !== 'none');
  if (rows.length !== expected.length) problems.push(`${rows.length} rows for ${expected.length} images`);
  for (const row of rows) {
    const head = replay.heads.get(streamIdOf(row.id as number));
    if (!head) problems.push(`row for image ${String(row.id)} has no stream`);
    else if (head.version !== row.version) problems.push(`image ${String(row.id)}: row v${String(row.version)}, stream v${head.version}`);
  }
  if (problems.length > 0) throw new RebuildVerificationError(to, problems);
  log(`verified ${rows.length} rows`);

  if (!(await locator.switchTo(to, from))) {
    throw new Error(`readmodel#images no longer points at ${from} (another rebuild?); ${to} was built but not switched to`);
  }
  log(`switched readmodel#images: ${from} -> ${to}`);

  // Events appended after the replay were projected into the old table by projectors
  // that had not yet re-read the pointer: replay once more, after their caches expired.
  await sleep(options.catchUpDelayMs ?? locator.ttlMs + 1_000);
  const catchUp = await replayInto(events, model, concurrency, replay.heads);
  log(`catch-up: ${catchUp.applied} newer rows`);
  return { from, to, events: replay.events, images: rows.length, catchUp: { events: catchUp.events, applied: catchUp.applied } };
};

// ---------------------------------------------------------------------------
// Quota from the log

/** Which images count against the quota: by default every image not revoked. */
export type CountsAgainstQuota = (state: StorageImageState) => boolean;
export const notRevoked: CountsAgainstQuota = (s) => s.status !== 'none' && s.status !== 'locked';

/**
 * userId -> {imageId: sizeMb} of the images that count, from each stream's head.
 * Every user with an image in the log is present (with `{}` when nothing counts).
 */
export const quotaFromLog = async (
  events: Pick<EventStore, 'scanAll'>,
  counts: CountsAgainstQuota = notRevoked,
): Promise<Map<number, Record<number, number>>> => {
  const heads = new Map<string, StoredEvent>();
  for await (const page of events.scanAll()) {
    for (const e of page) {
      const head = heads.get(e.streamId);
      if (!head || head.version < e.version) heads.set(e.streamId, e);
    }
  }
  const ledgers = new Map<number, Record<number, number>>();
  for (const { stateAfter: state } of heads.values()) {
    if (state.status === 'none') continue;
    const images = ledgers.get(state.image.userId) ?? {};
    if (counts(state)) images[state.image.imageId] = state.image.sizeMb;
    ledgers.set(state.image.userId, images);
  }
  return ledgers;
};

/** Sets every user's ledger to what the log says; returns the users whose ledger changed. */
export const rebuildQuotaLedgers = async (
  events: Pick<EventStore, 'scanAll'>,
  ledger: DynamoQuotaLedger,
  counts: CountsAgainstQuota = notRevoked,
): Promise<number[]> => {
  const changed: number[] = [];
  for (const [userId, images] of await quotaFromLog(events, counts)) {
    const current = await ledger.entry(userId);
    const same =
      Object.keys(current.images).length === Object.keys(images).length &&
      Object.entries(images).every(([id, size]) => current.images[Number(id)] === size) &&
      current.usedMb === Object.values(images).reduce((a, b) => a + b, 0);
    if (!same) {
      await ledger.reset(userId, images);
      changed.push(userId);
    }
  }
  return changed;
};
