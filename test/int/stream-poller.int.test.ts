/**
 * The local event source mapping (local/streamPoller.ts) against DynamoDB Local's Streams
 * API: each test writes to a fresh events table (made from tables.ts, so with the stream
 * view the CDK stack deploys) and checks what the handler is given, batch by batch.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTableCommand, PutItemCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { ensureTable } from '../../adapters/dynamodb/admin';
import { EVENTS_TABLE, tableName } from '../../adapters/dynamodb/tables';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamo';
import { StreamPoller, type DrainResult, type StreamPollerOptions } from '../../local/streamPoller';

let local: LocalDynamo;
const base = `sp${randomBytes(3).toString('hex')}`;
let tables = 0;
const pollers: StreamPoller[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  local = await startLocalDynamo({ prefix: base, tables: [] });
});
afterAll(async () => {
  for (const p of pollers) await p.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await local.close(); // drops every `${base}-*` table
});

/** A fresh events table of its own. */
const freshTable = async (): Promise<string> => {
  const prefix = `${base}-${++tables}`;
  await ensureTable(local.client, prefix, EVENTS_TABLE);
  return tableName(prefix, EVENTS_TABLE);
};

const streamArnOf = async (table: string) => (await local.client.send(new DescribeTableCommand({ TableName: table }))).Table!.LatestStreamArn!;

/** Appends event items `<stream>@1..n` one PutItem each, in the order given. */
const put = async (table: string, keys: string[], type = 'T') => {
  for (const key of keys) {
    const [streamId, version] = key.split('@') as [string, string];
    await local.client.send(new PutItemCommand({ TableName: table, Item: { streamId: { S: streamId }, version: { N: version }, type: { S: type } } }));
  }
};
const many = (streamId: string, n: number) => Array.from({ length: n }, (_, i) => `${streamId}@${i + 1}`);

const keyOf = (r: DynamoDBRecord) => `${r.dynamodb!.Keys!.streamId!.S}@${r.dynamodb!.Keys!.version!.N}`;
const seqOf = (r: DynamoDBRecord) => r.dynamodb!.SequenceNumber!;

/** A poller whose handler records every batch it is given and answers with `respond`. */
const recording = (
  table: string,
  respond: (records: DynamoDBRecord[], call: number) => DynamoDBBatchResponse | void = () => undefined,
  options: Partial<StreamPollerOptions> = {},
) => {
  const calls: DynamoDBRecord[][] = [];
  const poller = new StreamPoller({
    endpoint: local.endpoint,
    tableName: table,
    handler: async (event) => {
      calls.push(event.Records);
      return respond(event.Records, calls.length);
    },
    ...options,
  });
  pollers.push(poller);
  return { poller, calls, keys: () => calls.map((batch) => batch.map(keyOf)) };
};

/** Every record of a table's stream, read by a poller of its own. */
const recordsOf = async (table: string): Promise<DynamoDBRecord[]> => {
  const { poller, calls } = recording(table);
  await poller.drain();
  return calls.flat();
};

/** Drains until a pass has no failure (a failed batch is retried in the next pass). */
const settle = async (poller: StreamPoller): Promise<DrainResult> => {
  const total: DrainResult = { delivered: 0, failed: 0, deadLettered: 0 };
  for (let pass = 0; pass < 30; pass++) {
    const r = await poller.drain();
    total.delivered += r.delivered;
    total.failed += r.failed;
    total.deadLettered += r.deadLettered;
    if (r.failed === 0) return total;
  }
  throw new Error('the poller did not settle in 30 passes');
};

it('delivers every record once, in stream order, in batches of at most batchSize, with the stream ARN', async () => {
  const table = await freshTable();
  const written = many('a', 12).flatMap((k, i) => [k, `b@${i + 1}`]).slice(0, 23);
  await put(table, written);
  const { poller, calls, keys } = recording(table, undefined, { batchSize: 10 });

  expect(await poller.drain()).toEqual({ delivered: 23, failed: 0, deadLettered: 0 });
  expect(calls.map((b) => b.length)).toEqual([10, 10, 3]);
  expect(keys().flat()).toEqual(written);
  const records = calls.flat();
  const arn = await streamArnOf(table);
  for (const r of records) {
    expect(r).toMatchObject({ eventName: 'INSERT', eventSource: 'aws:dynamodb', eventSourceARN: arn, dynamodb: { StreamViewType: 'NEW_IMAGE', NewImage: { type: { S: 'T' } } } });
  }
  const seqs = records.map((r) => BigInt(seqOf(r)));
  expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);

  // Nothing new: the handler is not called. Then only what was written since.
  expect(await poller.drain()).toEqual({ delivered: 0, failed: 0, deadLettered: 0 });
  expect(calls).toHaveLength(3);
  await local.client.send(
    new TransactWriteItemsCommand({
      TransactItems: ['c@1', 'c@2'].map((k) => ({ Put: { TableName: table, Item: { streamId: { S: 'c' }, version: { N: k.slice(2) }, type: { S: 'T' } } } })),
    }),
  );
  await put(table, ['a@13']);
  expect(await poller.drain()).toEqual({ delivered: 3, failed: 0, deadLettered: 0 });
  expect(keys().slice(3).flat().sort()).toEqual(['a@13', 'c@1', 'c@2']);
  expect(keys().slice(3).flat().pop()).toBe('a@13');
});

it('gives attribute values as Lambda does: an empty map is {"M":{}}, binary is base64, time in epoch seconds', async () => {
  const table = await freshTable();
  const item = { streamId: { S: 'a' }, version: { N: '1' }, data: { M: {} }, nested: { M: { e: { M: {} }, l: { L: [] } } }, bin: { B: Buffer.from('hi') } };
  await local.client.send(new PutItemCommand({ TableName: table, Item: item }));
  const [record] = await recordsOf(table);
  expect(record!.dynamodb!.NewImage).toEqual({ ...item, bin: { B: Buffer.from('hi').toString('base64') } });
  expect(record!.dynamodb!.ApproximateCreationDateTime).toBeGreaterThan(1_600_000_000);
  expect(Number.isInteger(record!.dynamodb!.ApproximateCreationDateTime)).toBe(true);
});

it('skips what the filter refuses, as the mapping filter criteria do, and moves past it', async () => {
  const table = await freshTable();
  await put(table, ['a@1', 'a@2'], 'Created');
  await put(table, ['a@3'], 'Edited');
  await put(table, ['a@4'], 'Revoked');
  const { poller, keys } = recording(table, undefined, { filter: (r) => r.dynamodb?.NewImage?.type?.S !== 'Edited' });
  expect(await poller.drain()).toEqual({ delivered: 3, failed: 0, deadLettered: 0 });
  expect(keys()).toEqual([['a@1', 'a@2', 'a@4']]);
  expect(await poller.drain()).toEqual({ delivered: 0, failed: 0, deadLettered: 0 });
});

it('batchItemFailures: resumes from the lowest failed record; records before it are not delivered again, records after it are', async () => {
  const table = await freshTable();
  await put(table, many('a', 10));
  // Records 4 and 7 fail on the first call (reported highest first: the lowest counts).
  const { poller, keys } = recording(table, (records, call) =>
    call === 1 ? { batchItemFailures: [records[6]!, records[3]!].map((r) => ({ itemIdentifier: seqOf(r) })) } : undefined,
  );
  expect(await poller.drain()).toEqual({ delivered: 3, failed: 7, deadLettered: 0 });
  expect(await poller.drain()).toEqual({ delivered: 7, failed: 0, deadLettered: 0 });
  expect(keys()).toEqual([many('a', 10), many('a', 10).slice(3)]);
  expect(await poller.drain()).toEqual({ delivered: 0, failed: 0, deadLettered: 0 });
});

it('with bisect on, a partly failed batch is split at the failed record: only the rest of that batch comes again', async () => {
  const table = await freshTable();
  await put(table, many('a', 8));
  const { poller, keys } = recording(table, (records, call) => (call === 1 ? { batchItemFailures: [{ itemIdentifier: seqOf(records[2]!) }] } : undefined), {
    batchSize: 5,
    bisectBatchOnError: true,
  });
  await settle(poller);
  expect(keys()).toEqual([
    ['a@1', 'a@2', 'a@3', 'a@4', 'a@5'],
    ['a@3', 'a@4', 'a@5'],
    ['a@6', 'a@7', 'a@8'],
  ]);
});

it('an identifier that names no record of the batch fails the whole batch', async () => {
  const table = await freshTable();
  await put(table, many('a', 3));
  const { poller, keys } = recording(table, (_records, call) => (call === 1 ? { batchItemFailures: [{ itemIdentifier: 'nonsense' }] } : undefined));
  expect(await poller.drain()).toEqual({ delivered: 0, failed: 3, deadLettered: 0 });
  expect(await poller.drain()).toEqual({ delivered: 3, failed: 0, deadLettered: 0 });
  expect(keys()).toEqual([many('a', 3), many('a', 3)]);
});

it('bisect on a thrown error isolates the poison record; the others are delivered, the poison goes to the dead letters', async () => {
  const table = await freshTable();
  await put(table, many('a', 8));
  const acknowledged: string[] = [];
  const { poller, keys } = recording(
    table,
    (records) => {
      if (records.some((r) => keyOf(r) === 'a@6')) throw new Error('poison');
      acknowledged.push(...records.map(keyOf));
    },
    { batchSize: 8, bisectBatchOnError: true, retryAttempts: 1 },
  );
  expect(await settle(poller)).toMatchObject({ delivered: 7, deadLettered: 1 });
  expect(keys()).toEqual([
    many('a', 8),
    ['a@1', 'a@2', 'a@3', 'a@4'],
    ['a@5', 'a@6', 'a@7', 'a@8'],
    ['a@5', 'a@6'],
    ['a@5'],
    ['a@6'], // first failure of the isolated record
    ['a@6'], // its one retry
    ['a@7', 'a@8'],
  ]);
  expect(acknowledged).toEqual(['a@1', 'a@2', 'a@3', 'a@4', 'a@5', 'a@7', 'a@8']);
  const seq = seqOf((await recordsOf(table))[5]!);
  expect(poller.deadLetters).toHaveLength(1);
  expect(poller.deadLetters[0]!.DDBStreamBatchInfo).toMatchObject({ startSequenceNumber: seq, endSequenceNumber: seq, batchSize: 1 });
});

it('a split is not a retry: a poison record at the head of the batch still gets every retry', async () => {
  const table = await freshTable();
  await put(table, many('a', 4));
  const { poller, keys } = recording(
    table,
    (records) => {
      if (records.some((r) => keyOf(r) === 'a@1')) throw new Error('poison');
    },
    { batchSize: 4, bisectBatchOnError: true, retryAttempts: 1 },
  );
  expect(await settle(poller)).toMatchObject({ delivered: 3, deadLettered: 1 });
  expect(keys()).toEqual([many('a', 4), ['a@1', 'a@2'], ['a@1'], ['a@1'], ['a@2'], ['a@3', 'a@4']]);
});

it('retries are bounded: the dead letter carries the batch info, and later records still flow', async () => {
  const table = await freshTable();
  await put(table, many('a', 6));
  const dataDir = mkdtempSync(join(tmpdir(), 'poller-'));
  dirs.push(dataDir);
  const told: unknown[] = [];
  const { poller, keys } = recording(
    table,
    (records) => {
      if (records.some((r) => keyOf(r) === 'a@2')) throw new Error('down');
    },
    { batchSize: 3, retryAttempts: 2, dataDir, name: 'projector', onDeadLetter: (l) => told.push(l) },
  );
  expect(await poller.drain()).toEqual({ delivered: 0, failed: 3, deadLettered: 0 });
  expect(await poller.drain()).toEqual({ delivered: 0, failed: 3, deadLettered: 0 });
  expect(poller.deadLetters).toEqual([]);
  // The third failure exhausts the 2 retries: the batch is given up and the next one flows in the same pass.
  expect(await poller.drain()).toEqual({ delivered: 3, failed: 3, deadLettered: 3 });
  expect(keys()).toEqual([many('a', 3), many('a', 3), many('a', 3), ['a@4', 'a@5', 'a@6']]);

  const records = await recordsOf(table);
  expect(poller.deadLetters).toEqual([
    {
      requestContext: { requestId: expect.any(String), condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 },
      responseContext: { functionError: 'Unhandled' },
      version: '1.0',
      timestamp: expect.any(String),
      DDBStreamBatchInfo: {
        shardId: expect.stringMatching(/^shardId-/),
        startSequenceNumber: seqOf(records[0]!),
        endSequenceNumber: seqOf(records[2]!),
        batchSize: 3,
        streamArn: await streamArnOf(table),
        approximateArrivalOfFirstRecord: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        approximateArrivalOfLastRecord: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    },
  ]);
  expect(told).toEqual(poller.deadLetters);
  const file = readFileSync(join(dataDir, 'stream-dead-letters-projector.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(file).toEqual(poller.deadLetters);
  expect(await poller.drain()).toEqual({ delivered: 0, failed: 0, deadLettered: 0 });

  // Kept across a restart, as a queue keeps them, until the redrive removes one.
  const reopen = () => new StreamPoller({ endpoint: local.endpoint, tableName: table, handler: async () => undefined, dataDir, name: 'projector' });
  const restarted = reopen();
  expect(restarted.deadLetters).toEqual(poller.deadLetters);
  const { requestId } = poller.deadLetters[0]!.requestContext;
  expect(restarted.removeDeadLetter(requestId)).toBe(true);
  expect(restarted.removeDeadLetter(requestId)).toBe(false);
  expect(readFileSync(join(dataDir, 'stream-dead-letters-projector.jsonl'), 'utf8')).toBe('');
  await restarted.close();
  const again = reopen();
  expect(again.deadLetters).toEqual([]);
  await again.close();
});

it('a new poller on the same data dir resumes from the checkpoint file; without it, it starts from the beginning', async () => {
  const table = await freshTable();
  const dataDir = mkdtempSync(join(tmpdir(), 'poller-'));
  dirs.push(dataDir);
  await put(table, many('a', 5));
  const first = recording(table, undefined, { dataDir, name: 'diskFiles' });
  expect(await first.poller.drain()).toMatchObject({ delivered: 5 });
  await first.poller.close();
  await put(table, ['a@6', 'a@7']);

  const second = recording(table, undefined, { dataDir, name: 'diskFiles' });
  expect(await second.poller.drain()).toMatchObject({ delivered: 2 });
  expect(second.keys()).toEqual([['a@6', 'a@7']]);

  const fresh = recording(table, undefined, { name: 'diskFiles' });
  expect(await fresh.poller.drain()).toMatchObject({ delivered: 7 });
});

it('start() polls in the background; stop() waits for the pass in progress', async () => {
  const table = await freshTable();
  const { poller, keys } = recording(table);
  poller.start(20);
  await put(table, many('a', 3));
  while (keys().flat().length < 3) await new Promise((ok) => setTimeout(ok, 20));
  await poller.stop();
  await put(table, ['a@4']);
  expect(await poller.drain()).toMatchObject({ delivered: 1 }); // not taken by a background pass: stopped
  expect(keys().flat()).toEqual(many('a', 4));
});
