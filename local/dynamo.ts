/**
 * The embedded DynamoDB-protocol server (dynalite) for local mode and tests: in
 * memory, or on a folder (LevelDB) so the data survives restarts. Creates the
 * tables from adapters/dynamodb/tables.ts (existing ones are kept).
 */
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ensureTables } from '../adapters/dynamodb/admin';
import { INITIAL_TABLES, type TableDef } from '../adapters/dynamodb/tables';
import { DYNAMODB_MAX_ATTEMPTS } from '../functions/shared/config';

/** dynalite ships no types: the part we use. */
type DynaliteFactory = (options: {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as DynaliteFactory;

export const DEFAULT_TABLE_PREFIX = 'cc1';
export const DEFAULT_DATA_DIR = '.local-data';
/** Where a running local server writes its endpoint, so the ops CLI can reach it. */
export const ENDPOINT_FILE = 'dynamo-endpoint.json';

export interface LocalDynamoOptions {
  /** A folder for the data (LevelDB); in memory when absent. */
  dataDir?: string;
  /** Table name prefix (default `cc1`). */
  prefix?: string;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Table definitions to create (default: INITIAL_TABLES). */
  tables?: TableDef[];
}

export interface LocalDynamo {
  endpoint: string;
  prefix: string;
  /** A client for this server: dummy credentials, region us-east-1. */
  client: DynamoDBClient;
  /** Another client (e.g. to wrap with a request counter without counting the others). */
  newClient(): DynamoDBClient;
  close(): Promise<void>;
}

export const localClient = (endpoint: string): DynamoDBClient =>
  new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: DYNAMODB_MAX_ATTEMPTS,
  });

/** The data folder of `npm start` and the ops CLI: `CC1_DATA_DIR`, default `.local-data/`. */
export const localDataDir = (): string => resolve(process.env.CC1_DATA_DIR ?? DEFAULT_DATA_DIR);

export const startLocalDynamo = async (options: LocalDynamoOptions = {}): Promise<LocalDynamo> => {
  const prefix = options.prefix ?? DEFAULT_TABLE_PREFIX;
  let dbPath: string | undefined;
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    dbPath = join(options.dataDir, 'dynamo');
  }
  const server = dynalite({ path: dbPath, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((ok, ko) => {
    server.once('error', ko);
    server.listen(options.port ?? 0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: DynamoDBClient[] = [];
  const newClient = () => {
    const c = localClient(endpoint);
    clients.push(c);
    return c;
  };
  const client = newClient();
  const endpointFile = options.dataDir ? join(options.dataDir, ENDPOINT_FILE) : undefined;
  try {
    await ensureTables(client, prefix, options.tables ?? INITIAL_TABLES);
    if (endpointFile) writeFileSync(endpointFile, JSON.stringify({ endpoint, prefix, pid: process.pid }) + '\n');
  } catch (e) {
    await new Promise((ok) => server.close(() => ok(undefined)));
    throw e;
  }
  return {
    endpoint,
    prefix,
    client,
    newClient,
    close: async () => {
      for (const c of clients) c.destroy();
      if (endpointFile) rmSync(endpointFile, { force: true });
      await new Promise<void>((ok, ko) => server.close((err?: Error) => (err ? ko(err) : ok())));
    },
  };
};
