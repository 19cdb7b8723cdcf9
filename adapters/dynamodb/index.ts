/**
 * The DynamoDB adapters, wired for one table prefix. The same code runs on AWS and on
 * DynamoDB Local (local/dynamo.ts).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient } from './dynamo';
import { DynamoEventStore } from './eventStore';
import { DEFAULT_ID_BLOCK, DynamoIdAllocator } from './idAllocator';
import { DynamoQuotaLedger } from './quotaLedger';
import { DEFAULT_LOCATOR_TTL_MS, DynamoImageReadModel, ReadModelLocator } from './readModel';
import { DynamoReconcilerCursor } from './reconcilerCursor';
import { tableNames, type TableNames } from './tables';
import { DynamoVmDirectory } from './vmDirectory';

export interface DynamoStoresOptions {
  client: DynamoDBClient;
  /** Table name prefix (`<prefix>-events`, ...). */
  prefix: string;
  /** Ids reserved per counter update (default 20; 1 gives dense ids). */
  idBlockSize?: number;
  /** How long the images table name is cached (default 5 s). */
  readModelTtlMs?: number;
}

export interface DynamoStores {
  client: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  prefix: string;
  names: TableNames;
  events: DynamoEventStore;
  vms: DynamoVmDirectory;
  quota: DynamoQuotaLedger;
  ids: DynamoIdAllocator;
  locator: ReadModelLocator;
  readModel: DynamoImageReadModel;
  reconcilerCursor: DynamoReconcilerCursor;
}

export const createDynamoStores = (options: DynamoStoresOptions): DynamoStores => {
  const doc = documentClient(options.client);
  const names = tableNames(options.prefix);
  const locator = new ReadModelLocator(doc, names.control, options.prefix, options.readModelTtlMs ?? DEFAULT_LOCATOR_TTL_MS);
  return {
    client: options.client,
    doc,
    prefix: options.prefix,
    names,
    events: new DynamoEventStore(doc, names.events, names.control, locator),
    vms: new DynamoVmDirectory(doc, names.control),
    quota: new DynamoQuotaLedger(doc, names.control),
    ids: new DynamoIdAllocator(doc, names.control, options.idBlockSize ?? DEFAULT_ID_BLOCK),
    locator,
    readModel: new DynamoImageReadModel(doc, locator),
    reconcilerCursor: new DynamoReconcilerCursor(doc, names.control),
  };
};

export { documentClient, isConditionFailed, InvalidPageTokenError } from './dynamo';
export { DynamoEventStore } from './eventStore';
export { DynamoIdAllocator } from './idAllocator';
export { DynamoQuotaLedger } from './quotaLedger';
export { DynamoImageReadModel, ReadModelLocator, fixedImagesTable } from './readModel';
export { DynamoVmDirectory } from './vmDirectory';
export { DynamoReconcilerCursor, RECONCILER_CURSOR_KEY } from './reconcilerCursor';
export { Projector, makeProjectorHandler, storedEventOf, type StoredEventHook } from './projector';
export { rebuildImages, quotaFromLog, checkQuotaLedgers } from './rebuild';
export { idempotencyPersistence } from './idempotency';
export { countRequests, RequestCounter } from './requestCounter';
export * from './tables';
