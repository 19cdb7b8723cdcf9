/**
 * The disk-file redrive's error paths (its happy path runs end to end against DynamoDB
 * Local's Streams API and the local stack: test/e2e/redrive.e2e.test.ts): the Streams and
 * SQS adapters with mocked clients (aws-sdk-client-mock), and the redrive's choices for
 * unreadable messages, records past the stream retention, and a sweep that fails.
 */
import { DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, TrimmedDataAccessException } from '@aws-sdk/client-dynamodb-streams';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import type { DeadLetter, DeadLetters, StreamBatchInfo } from '../../application/ports';
import type { ServiceDeps } from '../../application/service';
import { StreamBatchGone, readStreamBatch } from '../../adapters/dynamodb/streamBatches';
import { SqsDeadLetters, streamBatchOf } from '../../adapters/sqs/deadLetters';
import { redriveDiskFiles } from '../../ops/redriveDiskFiles';

const batch: StreamBatchInfo = {
  shardId: 'shardId-00000001573689847184-864758bb',
  startSequenceNumber: '800000000003126276362',
  endSequenceNumber: '800000000003126276362',
  batchSize: 1,
  streamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/cc1-events/stream/2026-01-01T00:00:00.000',
  approximateArrivalOfFirstRecord: '2026-01-01T10:00:00Z',
  approximateArrivalOfLastRecord: '2026-01-01T10:00:00Z',
};
/** What Lambda sends to an SQS on-failure destination for a DynamoDB stream batch. */
const lambdaRecord = {
  requestContext: { requestId: 'c9b8fa9f-5a7f-4c35-9bb4-7d7e6c8f3f0b', functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:diskFiles', condition: 'RetryAttemptsExhausted', approximateInvokeCount: 11 },
  responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
  version: '1.0',
  timestamp: '2026-01-01T10:05:00.000Z',
  DDBStreamBatchInfo: batch,
};

describe('the Streams adapter', () => {
  const streams = mockClient(DynamoDBStreamsClient);
  const client = new DynamoDBStreamsClient({ region: 'eu-west-1' });
  beforeEach(() => streams.reset());

  test('records past the trim horizon are StreamBatchGone (the sweep takes over)', async () => {
    streams.on(GetShardIteratorCommand).rejects(new TrimmedDataAccessException({ message: 'sequence number is beyond the trim horizon', $metadata: {} }));
    await expect(readStreamBatch(client, batch)).rejects.toEqual(expect.objectContaining({ name: 'StreamBatchGone', reason: 'TrimmedDataAccessException' }));
    expect(streams.commandCalls(GetShardIteratorCommand)[0]!.args[0].input).toMatchObject({ ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: batch.startSequenceNumber });
  });

  test('a throttle is not "gone": it is thrown as is, and the letter is kept', async () => {
    streams.on(GetShardIteratorCommand).resolves({ ShardIterator: 'it-1' });
    streams.on(GetRecordsCommand).rejects(Object.assign(new Error('slow down'), { name: 'LimitExceededException' }));
    const error = await readStreamBatch(client, batch).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(StreamBatchGone);
    expect((error as Error).name).toBe('LimitExceededException');
  });

  test('a shard that ends before the last record is an error, not half a batch', async () => {
    streams.on(GetShardIteratorCommand).resolves({ ShardIterator: 'it-1' });
    streams.on(GetRecordsCommand).resolves({ Records: [] }); // closed shard: no next iterator
    await expect(readStreamBatch(client, batch)).rejects.toThrow('the last one never came');
  });
});

describe('the SQS adapter', () => {
  const sqs = mockClient(SQSClient);
  const client = new SQSClient({ region: 'eu-west-1' });
  beforeEach(() => sqs.reset());

  test('reads Lambda’s record into the batch; deletes by the receipt it got; a foreign body has no batch', async () => {
    sqs.on(ReceiveMessageCommand).resolves({
      Messages: [
        { MessageId: 'm-1', ReceiptHandle: 'r-1', Body: JSON.stringify(lambdaRecord) },
        { MessageId: 'm-2', ReceiptHandle: 'r-2', Body: 'hello' },
      ],
    });
    const letters = new SqsDeadLetters(client, 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq');
    const [ok, foreign] = await letters.receive();
    expect(ok).toMatchObject({ id: 'm-1', timestamp: lambdaRecord.timestamp, batch });
    expect(foreign).toEqual({ id: 'm-2', body: 'hello' });
    await letters.delete(ok!);
    expect(sqs.commandCalls(DeleteMessageCommand)[0]!.args[0].input).toEqual({ QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq', ReceiptHandle: 'r-1' });
    await expect(letters.delete({ id: 'm-9', body: '' })).rejects.toThrow('was not received here');
  });

  test('a batch description with missing or malformed fields is not taken for one', () => {
    expect(streamBatchOf(JSON.stringify({ DDBStreamBatchInfo: { ...batch, startSequenceNumber: '12; rm -rf /' } })).batch).toBeUndefined();
    expect(streamBatchOf(JSON.stringify({ DDBStreamBatchInfo: { shardId: 'x' } })).batch).toBeUndefined();
    expect(streamBatchOf('null')).toEqual({});
  });
});

describe('the redrive', () => {
  /** An in-memory queue that hands each letter out once per run, as SQS hides a received message. */
  const queue = (letters: DeadLetter[]) => {
    const left = [...letters];
    let handed = false;
    const deleted: string[] = [];
    const port: DeadLetters = {
      where: 'memory',
      receive: async () => (handed ? [] : ((handed = true), left)),
      delete: async (l) => void deleted.push(l.id),
    };
    return { port, deleted };
  };
  const io = () => {
    const out: any[] = [];
    return { out, io: { out: (l: string) => out.push(JSON.parse(l)), err: () => undefined } };
  };
  /** The sweep lists images by state; nothing else is reached when there are none. */
  const noImages = { readModel: { listAll: async () => ({ items: [] }) } } as unknown as ServiceDeps;

  test('records past the retention: a sweep over the letters’ window, then the letter is deleted; an unreadable message is kept', async () => {
    const { port, deleted } = queue([
      { id: 'old', body: JSON.stringify(lambdaRecord), batch },
      { id: 'junk', body: 'hello' },
    ]);
    const { out, io: opsIo } = io();
    const readBatch = async () => {
      throw new StreamBatchGone('beyond the trim horizon', 'TrimmedDataAccessException');
    };
    const summary = await redriveDiskFiles({ deadLetters: port, readBatch, deps: noImages }, opsIo);
    expect(summary).toEqual({ letters: 2, redriven: 0, swept: 1, kept: 1 });
    expect(deleted).toEqual(['old']);
    expect(out).toEqual([
      expect.objectContaining({ letter: 'old', outcome: 'past-retention', reason: 'TrimmedDataAccessException', next: 'sweep' }),
      expect.objectContaining({ letter: 'junk', outcome: 'unreadable', kept: true }),
      expect.objectContaining({
        sweep: expect.stringContaining('past the stream retention'),
        letters: ['old'],
        window: { from: '2026-01-01T09:55:00.000Z', to: '2026-01-01T10:05:00.000Z' },
        retried: [],
        filesRemoved: [],
        deleted: true,
      }),
      summary,
    ]);
  });

  test('a sweep that fails keeps its letters', async () => {
    const { port, deleted } = queue([{ id: 'old', body: JSON.stringify(lambdaRecord), batch }]);
    const { out, io: opsIo } = io();
    const failing = { readModel: { listAll: async () => Promise.reject(new Error('throttled')) } } as unknown as ServiceDeps;
    const readBatch = async () => {
      throw new StreamBatchGone('gone', 'ResourceNotFoundException');
    };
    expect(await redriveDiskFiles({ deadLetters: port, readBatch, deps: failing }, opsIo)).toEqual({ letters: 1, redriven: 0, swept: 0, kept: 1 });
    expect(deleted).toEqual([]);
    expect(out).toContainEqual({ sweep: 'failed', letters: ['old'], error: 'throttled', kept: true });
  });

  test('a letter whose records cannot be read now (not past retention) is kept, not swept', async () => {
    const { port, deleted } = queue([{ id: 'l', body: '', batch }]);
    const { out, io: opsIo } = io();
    const readBatch = async () => {
      throw new Error('network down');
    };
    expect(await redriveDiskFiles({ deadLetters: port, readBatch, deps: noImages }, opsIo)).toEqual({ letters: 1, redriven: 0, swept: 0, kept: 1 });
    expect(deleted).toEqual([]);
    expect(out[0]).toMatchObject({ letter: 'l', outcome: 'unread', error: 'network down', kept: true });
  });
});
