/** Table administration: create the tables of tables.ts (idempotently) and wait for them. */
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  ListTablesCommand,
  ResourceInUseException,
  UpdateTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { createTableInput, tableName, type TableDef } from './tables';

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

export const listTables = async (client: DynamoDBClient): Promise<string[]> => {
  const names: string[] = [];
  let start: string | undefined;
  do {
    const out = await client.send(new ListTablesCommand({ ExclusiveStartTableName: start }));
    names.push(...(out.TableNames ?? []));
    start = out.LastEvaluatedTableName;
  } while (start);
  return names;
};

export const waitForTableActive = async (client: DynamoDBClient, name: string, timeoutMs = 300_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await client.send(new DescribeTableCommand({ TableName: name }));
    const gsisActive = (out.Table?.GlobalSecondaryIndexes ?? []).every((g) => g.IndexStatus === undefined || g.IndexStatus === 'ACTIVE');
    if (out.Table?.TableStatus === 'ACTIVE' && gsisActive) return;
    if (Date.now() > deadline) throw new Error(`table ${name} not ACTIVE after ${timeoutMs} ms`);
    await sleep(200);
  }
};

/** Creates `def` unless a table of that name exists; waits until it is ACTIVE. Returns true if created. */
export const ensureTable = async (client: DynamoDBClient, prefix: string, def: TableDef): Promise<boolean> => {
  const name = tableName(prefix, def);
  let created = false;
  try {
    await client.send(new CreateTableCommand(createTableInput(prefix, def)));
    created = true;
  } catch (e) {
    if (!(e instanceof ResourceInUseException) && (e as Error).name !== 'ResourceInUseException') throw e;
  }
  await waitForTableActive(client, name);
  if (!created) await addMissingIndexes(client, prefix, def);
  return created;
};

/**
 * A table made by an older version lacks the indexes added since (a local data folder,
 * say): they are added one at a time (DynamoDB takes one index per UpdateTable) and
 * filled from the existing rows by DynamoDB itself.
 */
const addMissingIndexes = async (client: DynamoDBClient, prefix: string, def: TableDef): Promise<void> => {
  const name = tableName(prefix, def);
  const described = await client.send(new DescribeTableCommand({ TableName: name }));
  const present = new Set((described.Table?.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName));
  const wanted = createTableInput(prefix, def);
  for (const gsi of wanted.GlobalSecondaryIndexes ?? []) {
    if (present.has(gsi.IndexName)) continue;
    const keyNames = new Set(gsi.KeySchema.map((k) => k.AttributeName));
    await client.send(
      new UpdateTableCommand({
        TableName: name,
        AttributeDefinitions: wanted.AttributeDefinitions.filter((a) => keyNames.has(a.AttributeName)),
        GlobalSecondaryIndexUpdates: [{ Create: gsi }],
      }),
    );
    await waitForTableActive(client, name);
  }
};

export const ensureTables = async (client: DynamoDBClient, prefix: string, defs: TableDef[]): Promise<void> => {
  for (const def of defs) await ensureTable(client, prefix, def);
};

/** Deletes every table whose name starts with `<prefix>-` (tests on a shared server clean up after themselves). */
export const dropTables = async (client: DynamoDBClient, prefix: string): Promise<void> => {
  for (const name of await listTables(client)) {
    if (name.startsWith(`${prefix}-`)) await client.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
  }
};
