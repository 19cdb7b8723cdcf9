/**
 * Reads a dead-lettered batch of a DynamoDB stream again (the redrive): the dead letter
 * names a shard and a sequence-number range (`DDBStreamBatchInfo`), the records are
 * still in the stream for its 24 h retention. GetShardIterator AT_SEQUENCE_NUMBER the
 * first, GetRecords until past the last. Records older than the retention (or a stream
 * turned off, a shard gone) are `StreamBatchGone`: the caller falls back to a sweep.
 */
import { DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import type { StreamBatchInfo } from '../../application/ports';
import { toLambdaRecord } from './streamRecords';

/** The batch's records are no longer in the stream. */
export class StreamBatchGone extends Error {
  constructor(
    message: string,
    /** The service's exception name (TrimmedDataAccessException, ResourceNotFoundException). */
    readonly reason: string,
  ) {
    super(message);
    this.name = 'StreamBatchGone';
  }
}

/** Exceptions that mean the records cannot be read any more (as opposed to a throttle or a network error). */
const GONE = new Set(['TrimmedDataAccessException', 'ResourceNotFoundException']);

/** Empty GetRecords answers in a row before the end record is declared missing (an open shard may answer empty first). */
const MAX_EMPTY_READS = 20;

const seq = (r: DynamoDBRecord): bigint => BigInt(r.dynamodb?.SequenceNumber ?? '0');

export const readStreamBatch = async (client: DynamoDBStreamsClient, batch: StreamBatchInfo): Promise<DynamoDBRecord[]> => {
  const end = BigInt(batch.endSequenceNumber);
  const gone = (e: unknown): never => {
    const name = (e as Error).name;
    if (GONE.has(name)) throw new StreamBatchGone(`records ${batch.startSequenceNumber}..${batch.endSequenceNumber} of ${batch.shardId}: ${(e as Error).message}`, name);
    throw e;
  };
  let iterator = await client
    .send(
      new GetShardIteratorCommand({
        StreamArn: batch.streamArn,
        ShardId: batch.shardId,
        ShardIteratorType: 'AT_SEQUENCE_NUMBER',
        SequenceNumber: batch.startSequenceNumber,
      }),
    )
    .then((out) => out.ShardIterator, gone);
  const records: DynamoDBRecord[] = [];
  for (let empty = 0; iterator && empty < MAX_EMPTY_READS; ) {
    const out = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: Math.min(1000, Math.max(1, batch.batchSize)) })).catch(gone);
    const read = (out.Records ?? []).map((r) => toLambdaRecord(r, batch.streamArn));
    empty = read.length === 0 ? empty + 1 : 0;
    for (const record of read) {
      if (seq(record) > end) return records;
      records.push(record);
    }
    if (records.length > 0 && seq(records[records.length - 1]!) === end) return records;
    iterator = out.NextShardIterator;
  }
  // A closed shard read to its end (or an open one that kept answering empty) without the
  // last record: not a batch to half-do. The letter is kept for another run.
  throw new Error(`records ${batch.startSequenceNumber}..${batch.endSequenceNumber} of ${batch.shardId}: read ${records.length}, the last one never came`);
};
