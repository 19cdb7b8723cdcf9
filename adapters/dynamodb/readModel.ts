/**
 * The images read model: a versioned table `<prefix>-images-v<N>` (pk userId, sk id),
 * GSIs `byId` and sparse `byVm`. One row per image: `toImageView(stateAfter, version)`,
 * written by each command step in its transaction (read-your-writes, lists included),
 * and again by the stream projector only if newer than the stored row, so duplicates,
 * stale and replayed events change nothing. The table in use is named by the control
 * item `readmodel#images`; while a rebuild fills the next generation, the pointer names
 * it as `next` and every write goes to both (docs/event-store.md, rebuild).
 */
import { GetCommand, PutCommand, QueryCommand, ScanCommand, paginateQuery, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ImageReadModel, ImageView, ListOptions, Page, StoredEvent } from '../../application/storePorts';
import { toImageView } from '../../application/views';
import { decodeToken, encodeToken, InvalidPageTokenError, isConditionFailed, type Key } from './dynamo';
import { IMAGES_INDEX_BY_OWNER_STATE, IMAGES_INDEX_BY_STATE, IMAGES_INDEX_BY_VM, imagesTable, tableName } from './tables';

export const READ_MODEL_POINTER_KEY = 'readmodel#images';
export const DEFAULT_LOCATOR_TTL_MS = 5_000;

/** Which images table to read, and which ones to write. */
export interface ImagesTableSource {
  imagesTable(): Promise<string>;
  /** The table in use and, during a rebuild, the one being built. */
  imagesTables(): Promise<string[]>;
}

/** A fixed table (rebuilds, tests). */
export const fixedImagesTable = (name: string): ImagesTableSource => ({ imagesTable: async () => name, imagesTables: async () => [name] });

export interface ReadModelPointer {
  table: string;
  /** A rebuild in progress fills this one: writes go to both. */
  next?: string;
  previous?: string;
  switchedAt?: string;
}

/**
 * Reads `readmodel#images` from the control table, cached for `ttlMs` (default 5 s);
 * falls back to `<prefix>-images-v1` when the pointer was never written.
 */
export class ReadModelLocator implements ImagesTableSource {
  private cached: { tables: string[]; until: number } | undefined;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly controlTable: string,
    readonly prefix: string,
    readonly ttlMs: number = DEFAULT_LOCATOR_TTL_MS,
    private readonly clock: () => number = Date.now,
  ) {}

  get defaultTable(): string {
    return tableName(this.prefix, imagesTable(1));
  }

  async imagesTable(): Promise<string> {
    return (await this.imagesTables())[0]!;
  }

  async imagesTables(): Promise<string[]> {
    const now = this.clock();
    if (this.cached && now < this.cached.until) return this.cached.tables;
    const pointer = await this.pointer();
    const tables = [pointer?.table ?? this.defaultTable, ...(pointer?.next ? [pointer.next] : [])];
    this.cached = { tables, until: now + this.ttlMs };
    return tables;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  /** The pointer item, read consistently (undefined: never switched, v1 is in use). */
  async pointer(): Promise<ReadModelPointer | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.controlTable, Key: { pk: READ_MODEL_POINTER_KEY }, ConsistentRead: true }));
    return out.Item ? (out.Item as unknown as ReadModelPointer) : undefined;
  }

  private async putPointer(pointer: ReadModelPointer, expected: string, expectNext?: string): Promise<boolean> {
    const names: Record<string, string> = { '#t': 'table' };
    const values: Record<string, unknown> = { ':e': expected };
    let condition = expected === this.defaultTable ? '(attribute_not_exists(pk) OR #t = :e)' : '#t = :e';
    if (expectNext) {
      names['#n'] = 'next';
      values[':n'] = expectNext;
      condition += ' AND #n = :n';
    }
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.controlTable,
          Item: { pk: READ_MODEL_POINTER_KEY, ...pointer },
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (e) {
      if (isConditionFailed(e)) return false;
      throw e;
    }
    this.invalidate();
    return true;
  }

  /** Writes start going to `next` as well, if the pointer still names `expected` (two rebuilds racing: one wins). */
  startFilling(next: string, expected: string): Promise<boolean> {
    return this.putPointer({ table: expected, next }, expected);
  }

  /** Reads and writes move to `next`, which the rebuild has filled (and writes kept current meanwhile). */
  switchTo(next: string, expected: string, now = new Date().toISOString()): Promise<boolean> {
    return this.putPointer({ table: next, previous: expected, switchedAt: now }, expected, next);
  }
}

// ---------------------------------------------------------------------------

/** The stored row: the view, without null vmId/diskDev (so the byVm index is sparse). */
export type ImageRow = Omit<ImageView, 'vmId' | 'diskDev' | 'attachedAt'> & { vmId?: number; diskDev?: string; attachedAt?: string };

export const toRow = (view: ImageView): ImageRow => {
  const { vmId, diskDev, attachedAt, ...rest } = view;
  return { ...rest, ...(vmId !== null ? { vmId } : {}), ...(diskDev !== null ? { diskDev } : {}), ...(attachedAt !== null ? { attachedAt } : {}) };
};

export const fromRow = (item: Record<string, unknown>): ImageView => {
  const row = item as unknown as ImageRow;
  return {
    id: row.id,
    userId: row.userId,
    name: row.name,
    description: row.description,
    diskController: row.diskController,
    filesystem: row.filesystem,
    sizeMb: row.sizeMb,
    state: row.state,
    progress: row.progress,
    creationDate: row.creationDate,
    vmId: row.vmId ?? null,
    diskDev: row.diskDev ?? null,
    version: row.version,
    attachedAt: row.attachedAt ?? null,
  };
};

export const MAX_PAGE = 1000;
const REVOKED_STATE = 'locked';

export class DynamoImageReadModel implements ImageReadModel {
  private readonly source: ImagesTableSource;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    table: string | ImagesTableSource,
  ) {
    this.source = typeof table === 'string' ? fixedImagesTable(table) : table;
  }

  async apply(event: StoredEvent): Promise<'applied' | 'stale'> {
    const view = toImageView(event.stateAfter, event.version);
    if (!view) return 'stale';
    let outcome: 'applied' | 'stale' = 'stale';
    for (const table of await this.source.imagesTables()) {
      try {
        await this.doc.send(
          new PutCommand({
            TableName: table,
            Item: toRow(view),
            ConditionExpression: 'attribute_not_exists(userId) OR version < :v',
            ExpressionAttributeValues: { ':v': view.version },
          }),
        );
        outcome = 'applied';
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
      }
    }
    return outcome;
  }

  /**
   * A user's images: the table's own partition, read consistently (read-your-writes),
   * unless filtered: `?vmId=` reads the VM's few rows (byVm) and keeps the user's;
   * `?state=` reads the user's rows in that state (byOwnerState). Indexes are
   * eventually consistent (typically well under a second behind).
   */
  async listByOwner(userId: number, options: ListOptions): Promise<Page<ImageView>> {
    if (options.vmId !== undefined) return this.listByVmIndex(options.vmId, options, userId);
    if (options.state !== undefined) {
      const state = options.state;
      const start = decodeToken(options.nextToken, ['userId', 'state', 'id'], ['state']);
      if (start && (start.userId !== userId || start.state !== state)) throw new InvalidPageTokenError();
      return this.page(options, start, ['state'], (table, limit, from, filter) =>
        this.doc.send(
          new QueryCommand({
            TableName: table,
            IndexName: IMAGES_INDEX_BY_OWNER_STATE,
            KeyConditionExpression: 'userId = :u AND #state = :s',
            Limit: limit,
            ExclusiveStartKey: from,
            ...filter,
            ExpressionAttributeNames: { '#state': 'state', ...filter.ExpressionAttributeNames },
            ExpressionAttributeValues: { ':u': userId, ':s': state, ...filter.ExpressionAttributeValues },
          }),
        ),
      );
    }
    const start = decodeToken(options.nextToken, ['userId', 'id']);
    if (start && start.userId !== userId) throw new InvalidPageTokenError(); // a token of another user's list
    return this.page(options, start, [], async (table, limit, from, filter) =>
      this.doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'userId = :u',
          ConsistentRead: true, // read-your-writes for a user's own list
          Limit: limit,
          ExclusiveStartKey: from,
          ...filter,
          ExpressionAttributeValues: { ':u': userId, ...filter.ExpressionAttributeValues },
        }),
      ),
    );
  }

  /** Everyone's images: by VM (byVm), by state (byState), else the whole table (an admin's full listing). */
  async listAll(options: ListOptions): Promise<Page<ImageView>> {
    if (options.vmId !== undefined) return this.listByVmIndex(options.vmId, options);
    if (options.state !== undefined) {
      const state = options.state;
      const start = decodeToken(options.nextToken, ['state', 'id', 'userId'], ['state']);
      if (start && start.state !== state) throw new InvalidPageTokenError();
      return this.page(options, start, ['state'], (table, limit, from, filter) =>
        this.doc.send(
          new QueryCommand({
            TableName: table,
            IndexName: IMAGES_INDEX_BY_STATE,
            KeyConditionExpression: '#state = :s',
            Limit: limit,
            ExclusiveStartKey: from,
            ...filter,
            ExpressionAttributeNames: { '#state': 'state', ...filter.ExpressionAttributeNames },
            ExpressionAttributeValues: { ':s': state, ...filter.ExpressionAttributeValues },
          }),
        ),
      );
    }
    const start = decodeToken(options.nextToken, ['userId', 'id']);
    return this.page(options, start, [], async (table, limit, from, filter) =>
      this.doc.send(new ScanCommand({ TableName: table, ConsistentRead: true, Limit: limit, ExclusiveStartKey: from, ...filter })),
    );
  }

  /** The images on one VM (a VM holds a few), narrowed to one owner and state when asked. */
  private listByVmIndex(vmId: number, options: ListOptions, ownerId?: number): Promise<Page<ImageView>> {
    const start = decodeToken(options.nextToken, ['vmId', 'id', 'userId']);
    if (start && (start.vmId !== vmId || (ownerId !== undefined && start.userId !== ownerId))) throw new InvalidPageTokenError();
    return this.page(options, start, ownerId !== undefined ? ['owner'] : [], (table, limit, from, filter) =>
      this.doc.send(
        new QueryCommand({
          TableName: table,
          IndexName: IMAGES_INDEX_BY_VM,
          KeyConditionExpression: 'vmId = :vm',
          Limit: limit,
          ExclusiveStartKey: from,
          ...filter,
          ExpressionAttributeValues: { ':vm': vmId, ...(ownerId !== undefined ? { ':owner': ownerId } : {}), ...filter.ExpressionAttributeValues },
        }),
      ),
    );
  }

  /** Eventually consistent (a GSI): for the auto-detach and the reconciler, which re-check each image's stream. */
  async listByVm(vmId: number): Promise<ImageView[]> {
    const table = await this.source.imagesTable();
    const views: ImageView[] = [];
    const pages = paginateQuery(
      { client: this.doc },
      { TableName: table, IndexName: IMAGES_INDEX_BY_VM, KeyConditionExpression: 'vmId = :vm', ExpressionAttributeValues: { ':vm': vmId } },
    );
    for await (const page of pages) for (const item of page.Items ?? []) views.push(fromRow(item));
    return views;
  }

  /**
   * Pages with a filter: DynamoDB applies `Limit` before the filter, so a page can come
   * back short; ask again until `limit` items or the end. The filter leaves revoked images
   * out (unless `includeRevoked`; a list of `state=locked` without it is empty), keeps only `state`
   * unless the key condition holds it already (`inKey`), and only the owner's (`owner`,
   * value `:owner` given by the caller).
   */
  private async page(
    options: ListOptions,
    start: Key | undefined,
    inKey: ('state' | 'owner')[],
    fetch: (
      table: string,
      limit: number,
      from: Key | undefined,
      filter: { FilterExpression?: string; ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> },
    ) => Promise<{ Items?: Record<string, unknown>[]; LastEvaluatedKey?: Key }>,
  ): Promise<Page<ImageView>> {
    const limit = Math.min(Math.max(Math.trunc(options.limit) || 1, 1), MAX_PAGE);
    const stateInKey = inKey.includes('state');
    // Revoked images asked for by state but not to be shown (a user's `state=locked`): none.
    if (options.state === REVOKED_STATE && !options.includeRevoked) return { items: [] };
    const conditions: string[] = [];
    const values: Record<string, unknown> = {};
    // A key attribute cannot be filtered on; a key condition on state leaves revoked rows out (or names them) anyway.
    if (!options.includeRevoked && !stateInKey) {
      conditions.push('#state <> :revoked');
      values[':revoked'] = REVOKED_STATE;
    }
    if (options.state !== undefined && !stateInKey) {
      conditions.push('#state = :onlyState');
      values[':onlyState'] = options.state;
    }
    if (inKey.includes('owner')) conditions.push('userId = :owner');
    const usesState = conditions.some((c) => c.includes('#state'));
    const filter = conditions.length
      ? {
          FilterExpression: conditions.join(' AND '),
          ...(usesState ? { ExpressionAttributeNames: { '#state': 'state' } } : {}),
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
        }
      : {};
    const table = await this.source.imagesTable();
    const items: ImageView[] = [];
    let from = start;
    do {
      const out = await fetch(table, limit - items.length, from, filter);
      for (const item of out.Items ?? []) items.push(fromRow(item));
      from = out.LastEvaluatedKey;
    } while (from && items.length < limit);
    const nextToken = encodeToken(from);
    return nextToken ? { items, nextToken } : { items };
  }
}
