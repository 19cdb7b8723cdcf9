/**
 * DynamoDB access for the store figures: clients on the run's DynamoDB Local, tables per
 * figure. The figures' own tables have NO stream view: DynamoDB Local keeps every
 * stream record in its database, and once a table with a stream holds ~100,000 of them
 * (figure 3's long stream) every write on the server drops to ~3/s (bench/probeTransact.ts).
 * AWS's streams cost a write nothing, and no stream reader runs on these tables.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ensureTables } from '../adapters/dynamodb/admin';
import { documentClient } from '../adapters/dynamodb/dynamo';
import type { TableDef } from '../adapters/dynamodb/tables';
import type { ImageReadModel } from '../application/storePorts';
import { localClient } from '../local/dynamo';

export interface BenchDynamo {
  endpoint: string;
  /** A new client (own connection pool) on the run's DynamoDB Local. */
  client(): DynamoDBClient;
  doc(client: DynamoDBClient): DynamoDBDocumentClient;
  tables(prefix: string, defs: TableDef[]): Promise<void>;
  close(): void;
}

export const benchDynamo = (endpoint: string): BenchDynamo => {
  const clients: DynamoDBClient[] = [];
  const admin = localClient(endpoint);
  clients.push(admin);
  return {
    endpoint,
    client: () => {
      const c = localClient(endpoint);
      clients.push(c);
      return c;
    },
    doc: documentClient,
    tables: (prefix, defs) => ensureTables(admin, prefix, defs.map(withoutStream)),
    close: () => clients.forEach((c) => c.destroy()),
  };
};

/** A table definition without its stream view (see the top of this file). */
export const withoutStream = (def: TableDef): TableDef => ({ ...def, stream: undefined });

export { silentLogger } from '../application/logger';

/** For decide-and-append alone: no read model. */
export const noReadModel: ImageReadModel = {
  apply: async () => 'stale',
  listByOwner: async () => ({ items: [] }),
  listAll: async () => ({ items: [] }),
  listByVm: async () => [],
};
