/**
 * The DynamoDB tables, defined once as plain data. Used by the CDK stack, by the
 * embedded local server (local/dynamo.ts), by the read-model rebuild and by tests.
 * See docs/event-store.md for the item layouts.
 */

export type KeyType = 'HASH' | 'RANGE';
export type ScalarType = 'S' | 'N' | 'B';

export interface KeyElement {
  name: string;
  type: ScalarType;
}

export interface IndexDef {
  indexName: string;
  partitionKey: KeyElement;
  sortKey?: KeyElement;
  projection: 'ALL' | 'KEYS_ONLY';
}

export interface TableDef {
  /** The table's name is `<prefix>-<suffix>`. */
  suffix: string;
  partitionKey: KeyElement;
  sortKey?: KeyElement;
  globalSecondaryIndexes: IndexDef[];
  /** DynamoDB Streams view (on AWS, and on DynamoDB Local for local/streamPoller.ts). */
  stream?: 'NEW_IMAGE';
  /** TTL attribute (epoch seconds) on AWS; dynalite does not expire items. */
  timeToLiveAttribute?: string;
}

/** The event log: one item per event, pk streamId, sk version. */
export const EVENTS_TABLE: TableDef = {
  suffix: 'events',
  partitionKey: { name: 'streamId', type: 'S' },
  sortKey: { name: 'version', type: 'N' },
  globalSecondaryIndexes: [],
  stream: 'NEW_IMAGE',
};

/**
 * Single-item control records, pk only: `vm#<vmId>` (VM directory + device claims),
 * `quota#<userId>`, `counter#image`, `readmodel#images`, and Powertools idempotency records.
 */
export const CONTROL_TABLE: TableDef = {
  suffix: 'control',
  partitionKey: { name: 'pk', type: 'S' },
  globalSecondaryIndexes: [],
  timeToLiveAttribute: 'expiration',
};

export const IMAGES_INDEX_BY_ID = 'byId';
export const IMAGES_INDEX_BY_VM = 'byVm';
/** A user's images in one state (`GET /storage-images?state=`). Many rows share a key: GSIs allow it, paging goes on by the table key. */
export const IMAGES_INDEX_BY_OWNER_STATE = 'byOwnerState';
/** Everyone's images in one state (`GET /admin/storage-images?state=`). */
export const IMAGES_INDEX_BY_STATE = 'byState';

/** The images read model. Versioned: `images-v<N>`; a rebuild makes `v<N+1>` and switches. */
export const imagesTable = (generation: number): TableDef => ({
  suffix: `images-v${generation}`,
  partitionKey: { name: 'userId', type: 'N' },
  sortKey: { name: 'id', type: 'N' },
  globalSecondaryIndexes: [
    { indexName: IMAGES_INDEX_BY_ID, partitionKey: { name: 'id', type: 'N' }, projection: 'ALL' },
    // Sparse: rows of detached images have no vmId.
    {
      indexName: IMAGES_INDEX_BY_VM,
      partitionKey: { name: 'vmId', type: 'N' },
      sortKey: { name: 'id', type: 'N' },
      projection: 'ALL',
    },
    // The list filters (SPEC 4.7) on attributes every row has, so an index added to an
    // existing table covers its rows at once (no new attribute to backfill).
    {
      indexName: IMAGES_INDEX_BY_OWNER_STATE,
      partitionKey: { name: 'userId', type: 'N' },
      sortKey: { name: 'state', type: 'S' },
      projection: 'ALL',
    },
    {
      indexName: IMAGES_INDEX_BY_STATE,
      partitionKey: { name: 'state', type: 'S' },
      sortKey: { name: 'id', type: 'N' },
      projection: 'ALL',
    },
  ],
});

/** The tables a fresh deployment (or local data dir) starts with. */
export const INITIAL_TABLES: TableDef[] = [EVENTS_TABLE, CONTROL_TABLE, imagesTable(1)];

export const tableName = (prefix: string, def: TableDef): string => `${prefix}-${def.suffix}`;

export interface TableNames {
  events: string;
  control: string;
  /** The first images table; the one in use is read from `readmodel#images` (ReadModelLocator). */
  imagesV1: string;
  /** The images table of generation `n`. */
  images(generation: number): string;
}

export const tableNames = (prefix: string): TableNames => ({
  events: tableName(prefix, EVENTS_TABLE),
  control: tableName(prefix, CONTROL_TABLE),
  imagesV1: tableName(prefix, imagesTable(1)),
  images: (generation) => tableName(prefix, imagesTable(generation)),
});

/** The generation of an images table name (`...-images-v7` -> 7), or undefined. */
export const imagesGenerationOf = (name: string): number | undefined => {
  const m = /-images-v(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
};

/** CreateTable input (on-demand billing) for a definition; used locally and by the rebuild. */
export const createTableInput = (prefix: string, def: TableDef) => {
  const keys = [def.partitionKey, ...(def.sortKey ? [def.sortKey] : [])];
  const attrs = new Map<string, ScalarType>();
  for (const k of keys) attrs.set(k.name, k.type);
  for (const gsi of def.globalSecondaryIndexes) {
    attrs.set(gsi.partitionKey.name, gsi.partitionKey.type);
    if (gsi.sortKey) attrs.set(gsi.sortKey.name, gsi.sortKey.type);
  }
  const keySchema = (pk: KeyElement, sk?: KeyElement) => [
    { AttributeName: pk.name, KeyType: 'HASH' as const },
    ...(sk ? [{ AttributeName: sk.name, KeyType: 'RANGE' as const }] : []),
  ];
  return {
    TableName: tableName(prefix, def),
    BillingMode: 'PAY_PER_REQUEST' as const,
    KeySchema: keySchema(def.partitionKey, def.sortKey),
    AttributeDefinitions: [...attrs].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
    ...(def.globalSecondaryIndexes.length > 0
      ? {
          GlobalSecondaryIndexes: def.globalSecondaryIndexes.map((gsi) => ({
            IndexName: gsi.indexName,
            KeySchema: keySchema(gsi.partitionKey, gsi.sortKey),
            Projection: { ProjectionType: gsi.projection },
          })),
        }
      : {}),
    ...(def.stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: def.stream } } : {}),
  };
};
