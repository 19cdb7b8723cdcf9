/** The ops CLI commands against DynamoDB Local. */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { runCli } from '../../ops/cli';
import type { Connection } from '../../ops/connect';
import { Projector } from '../../adapters/dynamodb';
import { appendStream, at, attached, created, diskReady, revoked, useTestDynamo } from '../support/dynamo';

jest.setTimeout(30_000);
const dynamo = useTestDynamo({ readModelTtlMs: 50 });

const run = async (argv: string[]) => {
  const out: string[] = [];
  const err: string[] = [];
  const { stores } = dynamo();
  const connection: Connection = { stores, where: 'test', exclusive: true, close: async () => undefined };
  const code = await runCli(argv, { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, connect: async () => connection });
  return { code, out, err };
};

beforeAll(async () => {
  const { stores } = dynamo();
  await appendStream(stores, 1, [created(1, 7, 300), diskReady(7), attached(7, 70, 'vdb', at(3))]);
  await appendStream(stores, 2, [created(2, 7, 50), diskReady(7), revoked(7)]);
  const projector = new Projector({ readModel: stores.readModel });
  await dynamo()
    .poller((event) => projector.processBatch(event))
    .drain();
});

it('history prints the events of an image as JSON lines', async () => {
  const { code, out } = await run(['history', '1']);
  expect(code).toBe(0);
  const lines = out.map((l) => JSON.parse(l));
  expect(lines.map((l) => [l.version, l.type])).toEqual([
    [1, 'StorageImageCreated'],
    [2, 'StorageImageDiskReady'],
    [3, 'StorageImageAttached'],
  ]);
  expect(lines[2]).toEqual({ type: 'StorageImageAttached', version: 3, time: at(3), cause: { kind: 'user', userId: 7 }, data: { vmId: 70, diskDev: 'vdb', mode: 'boot', attachId: 'image-70-vdb' } });
  expect((await run(['history', '99'])).code).toBe(1);
  expect((await run(['history', 'x'])).code).toBe(2);
});

it('rebuild images switches reads to a fresh table equal to the old one', async () => {
  const { stores } = dynamo();
  const before = await stores.readModel.listByOwner(7, { limit: 10, includeRevoked: true });
  const { code, out } = await run(['rebuild', 'images']);
  expect(code).toBe(0);
  const report = JSON.parse(out[0]!);
  expect(report).toMatchObject({ from: stores.names.imagesV1, to: stores.names.images(2), events: 6, images: 2 });
  expect(await stores.locator.imagesTable()).toBe(stores.names.images(2));
  expect(await stores.readModel.listByOwner(7, { limit: 10, includeRevoked: true })).toEqual(before);
});

it('rebuild quota audits the ledgers against the log (dry run prints the log\'s figures), exit 1 on a difference', async () => {
  const dry = await run(['rebuild', 'quota', '--dry-run']);
  expect(dry.out.map((l) => JSON.parse(l))).toEqual([{ userId: 7, usedMb: 300, images: { 1: 300 } }]);
  const audit = await run(['rebuild', 'quota']);
  expect([audit.code, JSON.parse(audit.out[0]!)]).toEqual([0, { differences: [] }]);
  // A ledger the log does not explain: reported, never reset.
  const { stores } = dynamo();
  await stores.doc.send(new UpdateCommand({ TableName: stores.names.control, Key: { pk: 'quota#7' }, UpdateExpression: 'SET usedMb = :x', ExpressionAttributeValues: { ':x': 1 } }));
  const bad = await run(['rebuild', 'quota']);
  expect([bad.code, JSON.parse(bad.out[0]!)]).toEqual([1, { differences: [{ userId: 7, ledgerMb: 1, logMb: 300 }] }]);
  expect(await stores.quota.usedMb(7)).toBe(1);
});

it('unknown commands print the help', async () => {
  const { code, err } = await run(['frobnicate']);
  expect(code).toBe(2);
  expect(err.join('\n')).toMatch(/rebuild images/);
});
