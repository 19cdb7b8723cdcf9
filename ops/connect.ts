/**
 * Where the ops CLI works: AWS (`CC1_AWS=1`, tables `<TABLE_PREFIX>-*`, credentials and
 * region from the usual AWS environment), a DynamoDB endpoint (`DYNAMODB_ENDPOINT`), or
 * by default the local data folder (`CC1_DATA_DIR`, default `.local-data/`): through the
 * running `npm start` server if there is one, else by opening the folder itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { createDynamoStores, type DynamoStores } from '../adapters/dynamodb';
import { DEFAULT_TABLE_PREFIX, ENDPOINT_FILE, localClient, localDataDir, startLocalDynamo } from '../local/dynamo';
import { DYNAMODB_MAX_ATTEMPTS, ENV } from '../functions/shared/config';

export interface Connection {
  stores: DynamoStores;
  /** Human words for where we are connected. */
  where: string;
  /** True when this process opened the data itself: nobody else reads or projects meanwhile. */
  exclusive?: boolean;
  close(): Promise<void>;
}

const reachable = async (client: DynamoDBClient): Promise<boolean> => {
  try {
    await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(1500) });
    return true;
  } catch {
    return false;
  }
};

export const connect = async (env: NodeJS.ProcessEnv = process.env): Promise<Connection> => {
  const prefix = env[ENV.tablePrefix] || env.CC1_TABLE_PREFIX || DEFAULT_TABLE_PREFIX;
  if (env.CC1_AWS === '1') {
    const client = new DynamoDBClient({ maxAttempts: DYNAMODB_MAX_ATTEMPTS });
    const region = await client.config.region();
    return { stores: createDynamoStores({ client, prefix }), where: `AWS ${region}, tables ${prefix}-*`, close: async () => client.destroy() };
  }
  const endpoint = env[ENV.dynamodbEndpoint];
  if (endpoint) {
    const client = localClient(endpoint);
    return { stores: createDynamoStores({ client, prefix }), where: `${endpoint}, tables ${prefix}-*`, close: async () => client.destroy() };
  }
  const dataDir = localDataDir();
  const endpointFile = join(dataDir, ENDPOINT_FILE);
  if (existsSync(endpointFile)) {
    const running = JSON.parse(readFileSync(endpointFile, 'utf8')) as { endpoint: string; prefix?: string };
    const client = localClient(running.endpoint);
    if (await reachable(client)) {
      const p = running.prefix ?? prefix;
      return { stores: createDynamoStores({ client, prefix: p }), where: `the running local server ${running.endpoint} (${dataDir}), tables ${p}-*`, close: async () => client.destroy() };
    }
    client.destroy();
  }
  let local;
  try {
    local = await startLocalDynamo({ dataDir, prefix });
  } catch (e) {
    throw new Error(`cannot open the local data in ${dataDir} (${(e as Error).message}); is another process using it? Set ${ENV.dynamodbEndpoint} to its endpoint.`);
  }
  return { stores: createDynamoStores({ client: local.client, prefix }), where: `local data ${dataDir}, tables ${prefix}-*`, exclusive: true, close: () => local.close() };
};
