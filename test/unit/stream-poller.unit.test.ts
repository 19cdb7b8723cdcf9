/**
 * The local stream poller's error path that DynamoDB Local itself causes: GetRecords now
 * and then answers TrimmedDataAccessException on a live shard (aws/aws-sdk-java#2923),
 * and an iterator can expire. The poller takes a new iterator at its checkpoint and reads
 * on, as Lambda's mapping does: no record lost, none handed over twice, the drain
 * succeeds. A shard that keeps failing still fails the drain (it is not skipped).
 * The happy paths run against DynamoDB Local in test/int/stream-poller.int.test.ts.
 */
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, TrimmedDataAccessException, type _Record } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { StreamPoller } from '../../local/streamPoller';

const dynamo = mockClient(DynamoDBClient);
const streams = mockClient(DynamoDBStreamsClient);
const ARN = 'arn:aws:dynamodb:ddblocal:000000000000:table/events/stream/2026-12-02T00:00:00.000';
const SHARD = 'shardId-00000001';

const record = (n: number): _Record => ({
  eventID: `e${n}`,
  eventName: 'INSERT',
  dynamodb: { SequenceNumber: String(100 + n), Keys: { streamId: { S: 'image-1' }, version: { N: String(n) } }, NewImage: { streamId: { S: 'image-1' }, version: { N: String(n) } } },
});
const trimmed = () => new TrimmedDataAccessException({ message: 'The operation attempted to read past the oldest stream record in a shard.', $metadata: {} });

let delivered: string[];
const poller = () =>
  new StreamPoller({
    endpoint: 'http://127.0.0.1:1',
    tableName: 'events',
    handler: async (event) => {
      delivered.push(...event.Records.map((r: DynamoDBRecord) => r.dynamodb!.SequenceNumber!));
    },
  });

beforeEach(() => {
  delivered = [];
  dynamo.reset();
  streams.reset();
  dynamo.on(DescribeTableCommand).resolves({ Table: { LatestStreamArn: ARN } });
  streams.on(DescribeStreamCommand).resolves({ StreamDescription: { Shards: [{ ShardId: SHARD }] } });
  streams.on(GetShardIteratorCommand, { ShardIteratorType: 'TRIM_HORIZON' }).resolves({ ShardIterator: 'from-start' });
  streams.on(GetShardIteratorCommand, { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: '102' }).resolves({ ShardIterator: 'after-102' });
  streams.on(GetRecordsCommand, { ShardIterator: 'from-start' }).resolves({ Records: [record(1), record(2)], NextShardIterator: 'next' });
  streams.on(GetRecordsCommand, { ShardIterator: 'after-102' }).resolves({ Records: [record(3)], NextShardIterator: 'tail' });
  streams.on(GetRecordsCommand, { ShardIterator: 'tail' }).resolves({ Records: [], NextShardIterator: 'tail' });
});

test('a TrimmedDataAccessException on a live shard: a new iterator at the checkpoint reads on, nothing lost or doubled', async () => {
  streams.on(GetRecordsCommand, { ShardIterator: 'next' }).rejects(trimmed());
  const p = poller();
  await expect(p.drain()).resolves.toEqual({ delivered: 3, failed: 0, deadLettered: 0 });
  expect(delivered).toEqual(['101', '102', '103']);
  expect(streams.commandCalls(GetShardIteratorCommand, { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: '102' })).toHaveLength(1);
  await p.close();
});

test('an expired iterator is replaced the same way', async () => {
  streams.on(GetRecordsCommand, { ShardIterator: 'next' }).rejects(Object.assign(new Error('Iterator expired'), { name: 'ExpiredIteratorException' }));
  const p = poller();
  await expect(p.drain()).resolves.toEqual({ delivered: 3, failed: 0, deadLettered: 0 });
  expect(delivered).toEqual(['101', '102', '103']);
  await p.close();
});

test('a shard that keeps answering TrimmedDataAccessException fails the drain instead of being skipped', async () => {
  streams.on(GetRecordsCommand, { ShardIterator: 'next' }).rejects(trimmed());
  streams.on(GetRecordsCommand, { ShardIterator: 'after-102' }).rejects(trimmed());
  const p = poller();
  await expect(p.drain()).rejects.toThrow(/oldest stream record/);
  expect(delivered).toEqual(['101', '102']);
  await p.close();
});

test('other errors are not retried here: they fail the drain', async () => {
  streams.on(GetRecordsCommand, { ShardIterator: 'next' }).rejects(Object.assign(new Error('boom'), { name: 'InternalServerError' }));
  const p = poller();
  await expect(p.drain()).rejects.toThrow('boom');
  expect(streams.commandCalls(GetShardIteratorCommand, { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER' })).toHaveLength(0);
  await p.close();
});
