/**
 * The images read model: a versioned table `<prefix>-images-v<N>` (pk userId, sk id),
 * GSIs `byId` and sparse `byVm`. One row per image: `toImageView(stateAfter, version)`,
 * written only if newer than the stored row, so duplicates, stale and replayed events
 * change nothing. The table in use is named by the control item `readmodel#images`
 * (a rebuild writes a fresh table and switches that pointer).
 */
import { GetCommand, PutCommand, QueryCommand, ScanCommand, paginateQuery, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ImageReadModel, ImageView, Page, StoredEvent } from '../../application/storePorts';
import { toImageView } from '../../application/views';
import { decodeToken, encodeToken, InvalidPageTokenError, isConditionFailed, type Key } from './dynamo';
import { IMAGES_INDEX_BY_VM, imagesTable, tableName } from './tables';

export const READ_MODEL_POINTER_KEY = 'readmodel#images';
export const DEFAULT_LOCATOR_TTL_MS = 5_000;

/** Which images table to use. */
export interface ImagesTableSource {
  imagesTable(): Promise<string>;
}

/** A fixed table (rebuilds, tests). */
export const fixedImagesTable = (name: string): ImagesTableSource => ({ imagesTable: async () => name });

export interface ReadModelPointer {
  table: string;
  previous?: string;
  switchedAt?: string;
}

/**
 * Reads `readmodel#images` from the control table, cached for `ttlMs` (default 5 s);
 * falls back to `<prefix>-images-v1` when the pointer was never written.
 */
export class ReadModelLocator implements ImagesTableSource {
  private cached: { table: string; until: number } | undefined;

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
    const now = this.clock();
    if (this.cached && now < this.cached.until) return this.cached.table;
    const pointer = await this.pointer();
    const table = pointer?.table ?? this.defaultTable;
    this.cached = { table, until: now + this.ttlMs };
    return table;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  /** The pointer item, read consistently (undefined: never switched, v1 is in use). */
  async pointer(): Promise<ReadModelPointer | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.controlTable, Key: { pk: READ_MODEL_POINTER_KEY }, ConsistentRead: true }));
    return out.Item ? (out.Item as unknown as ReadModelPointer) : undefined;
  }

  /**
   * Points reads and projections at `table`, if the pointer still names `expected`
   * (two rebuilds racing: only one switches). Returns false when it did not.
   */
  async switchTo(table: string, expected: string, now = new Date().toISOString()): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.controlTable,
          Item: { pk: READ_MODEL_POINTER_KEY, table, previous: expected, switchedAt: now },
          ConditionExpression: expected === this.defaultTable ? 'attribute_not_exists(pk) OR #t = :e' : '#t = :e',
          ExpressionAttributeNames: { '#t': 'table' },
          ExpressionAttributeValues: { ':e': expected },
        }),
      );
    } catch (e) {
      if (isConditionFailed(e)) return false;
      throw e;
    }
    this.invalidate();
    return true;
  }
}

// ---------------------------------------------------------------------------

/** The stored row: the view, without null vmId/diskDev (so the byVm index is sparse). */
export type ImageRow = Omit<ImageView, 'vmId' | 'diskDev'> & { vmId?: number; diskDev?: string };

export const toRow = (view: ImageView): ImageRow => {
  const { vmId, diskDev, ...rest } = view;
  return { ...rest, ...(vmId !== null ? { vmId } : {}), ...(diskDev !== null ? { diskDev } : {}) };
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
    try {
      await this.doc.send(
        new PutCommand({
          TableName: await this.source.imagesTable(),
          Item: toRow(view),
          ConditionExpression: 'attribute_not_exists(userId) OR version < :v',
          ExpressionAttributeValues: { ':v': view.version },
        }),
      );
      return 'applied';
    } catch (e) {
      if (isConditionFailed(e)) return 'stale';
      throw e;
    }
  }

  async listByOwner(userId: number, options: { limit: number; nextToken?: string; includeRevoked?: boolean }): Promise<Page<ImageView>> {
    const start = decodeToken(options.nextToken, ['userId', 'id']);
    if (start && start.userId !== userId) throw new InvalidPageTokenError(); // a token of another user's list
    return this.page(options, start, async (table, limit, from, filter) =>
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

  async listAll(options: { limit: number; nextToken?: string; includeRevoked?: boolean }): Promise<Page<ImageView>> {
    const start = decodeToken(options.nextToken, ['userId', 'id']);
    return this.page(options, start, async (table, limit, from, filter) =>
      this.doc.send(new ScanCommand({ TableName: table, ConsistentRead: true, Limit: limit, ExclusiveStartKey: from, ...filter })),
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
   * back short; ask again until `limit` items or the end.
   */
  private async page(
    options: { limit: number; includeRevoked?: boolean },
    start: Key | undefined,
    fetch: (
      table: string,
      limit: number,
      from: Key | undefined,
      filter: { FilterExpression?: string; ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> },
    ) => Promise<{ Items?: Record<string, unknown>[]; LastEvaluatedKey?: Key }>,
  ): Promise<Page<ImageView>> {
    const limit = Math.min(Math.max(Math.trunc(options.limit) || 1, 1), MAX_PAGE);
    const filter = options.includeRevoked
      ? {}
      : { FilterExpression: '#state <> :revoked', ExpressionAttributeNames: { '#state': 'state' }, ExpressionAttributeValues: { ':revoked': REVOKED_STATE } };
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
