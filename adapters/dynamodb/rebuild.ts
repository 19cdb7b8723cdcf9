/**
 * Rebuilds from the event log.
 * - `rebuildImages`: a fresh images table `-v<N+1>` (definition from tables.ts). The
 *   pointer `readmodel#images` first names it as `next`, so every command step and the
 *   projector write to both tables; once every writer has seen that (the locator's cache
 *   time), the whole log is replayed into it through the same newer-only `apply` the
 *   projector uses, it is verified against the log's heads, and only then do reads
 *   switch to it. Writes made during the rebuild are never missing from lists. The old
 *   table is kept (delete it by hand when happy).
 * - `quotaFromLog` / `checkQuotaLedgers`: the exact quota use per user from the log, and
 *   where a ledger differs from it (an audit: the ledger is written only in the same
 *   transactions as the events, so it is never reset blindly).
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
   * Wait after naming the new table as `next` and before the replay, so that every
   * writer's locator cache has expired and writes to it too (default: locator TTL + 1 s).
   */
  catchUpDelayMs?: number;
  log?: (message: string) => void;
}

export interface RebuildReport {
  from: string;
  to: string;
  events: number;
  images: number;
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
  if (!(await locator.startFilling(to, from))) {
    throw new Error(`readmodel#images no longer points at ${from} (another rebuild?); ${to} was made but not filled`);
  }
  // Every writer re-reads the pointer within its cache time: after that, all write to both.
  log(`writes now go to ${from} and ${to}; waiting for every writer to see it`);
  await sleep(options.catchUpDelayMs ?? locator.ttlMs + 1_000);

  const model = new DynamoImageReadModel(doc, to);
  const replay = await replayInto(events, model, concurrency);
  log(`replayed ${replay.events} events of ${replay.heads.size} streams`);

  // Verify: a row per stream of the log, at its head version or newer (writes go on meanwhile).
  const rows = new Map((await scanRows(doc, to)).map((row) => [row.id as number, row]));
  const problems: string[] = [];
  for (const [streamId, head] of replay.heads) {
    if (head.state.status === 'none') continue;
    const row = rows.get(head.state.image.imageId);
    if (!row) problems.push(`${streamId}: no row`);
    else if ((row.version as number) < head.version) problems.push(`${streamId}: row v${String(row.version)}, stream v${head.version}`);
  }
  if (problems.length > 0) throw new RebuildVerificationError(to, problems);
  log(`verified ${rows.size} rows`);

  if (!(await locator.switchTo(to, from))) {
    throw new Error(`readmodel#images changed during the rebuild (another rebuild?); ${to} was built but not switched to`);
  }
  log(`switched readmodel#images: ${from} -> ${to}`);
  return { from, to, events: replay.events, images: rows.size };
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

/** Users whose ledger differs from the log, with both figures (an audit; nothing is written). */
export const checkQuotaLedgers = async (
  events: Pick<EventStore, 'scanAll'>,
  ledger: DynamoQuotaLedger,
  counts: CountsAgainstQuota = notRevoked,
): Promise<{ userId: number; ledgerMb: number; logMb: number }[]> => {
  const differences: { userId: number; ledgerMb: number; logMb: number }[] = [];
  for (const [userId, images] of await quotaFromLog(events, counts)) {
    const current = await ledger.entry(userId);
    const logMb = Object.values(images).reduce((a, b) => a + b, 0);
    const same =
      Object.keys(current.images).length === Object.keys(images).length &&
      Object.entries(images).every(([id, size]) => current.images[Number(id)] === size) &&
      current.usedMb === logMb;
    if (!same) differences.push({ userId, ledgerMb: current.usedMb, logMb });
  }
  return differences;
};
