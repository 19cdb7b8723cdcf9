/**
 * A rebuild fills the next generation the operator deployed (empty, managed by
 * CloudFormation with PITR and deletion protection) instead of making another table.
 */
import { imagesTable, rebuildImages, tableName } from '../../adapters/dynamodb';
import { ensureTable, listTables } from '../../adapters/dynamodb/admin';
import { appendStream, created, diskReady, useTestDynamo } from '../support/dynamo';

const dynamo = useTestDynamo({ readModelTtlMs: 100 });

test('an empty, already deployed next generation is the one rebuilt into', async () => {
  const { stores, local, prefix } = dynamo();
  await appendStream(stores, 1, [created(1, 7), diskReady(7)]);
  await ensureTable(local.client, prefix, imagesTable(2)); // as `-c imagesTableVersions=1,2` deploys it
  const report = await rebuildImages({ client: local.client, doc: stores.doc, prefix, events: stores.events, locator: stores.locator, catchUpDelayMs: 10 });
  expect(report.to).toBe(tableName(prefix, imagesTable(2)));
  expect((await listTables(local.client)).filter((n) => n.startsWith(`${prefix}-images-v`)).sort()).toEqual([
    tableName(prefix, imagesTable(1)),
    tableName(prefix, imagesTable(2)),
  ]);
  // The next rebuild goes on to v3: v2 is in use now.
  const again = await rebuildImages({ client: local.client, doc: stores.doc, prefix, events: stores.events, locator: stores.locator, catchUpDelayMs: 10 });
  expect(again.to).toBe(tableName(prefix, imagesTable(3)));
});
