/**
 * The local stand-in for Lambda's DynamoDB event source mapping (SPEC 3, 4.5): reads one
 * table's stream through the DynamoDB Streams API of DynamoDB Local and calls a handler
 * with `DynamoDBStreamEvent` batches, as the mappings of infra/storageImagesStack.ts do:
 * - per shard, records in stream order, one batch in flight; parent shards are finished
 *   before their children; every record carries `eventSourceARN` (the stream ARN);
 * - `batchItemFailures` (ReportBatchItemFailures): the checkpoint stops just before the
 *   lowest failed record; the rest of the batch comes again (with bisect: only the rest
 *   of that batch, as Lambda does when both are on);
 * - a thrown error fails the whole batch; with `bisectBatchOnError` it is split in two
 *   and each half retried (a split is not a retry: Lambda does not count it);
 * - `retryAttempts`: when the batch starting at a record has failed 1 + retryAttempts
 *   times, its description goes to the on-failure destination (the dead letters, shaped
 *   as what Lambda sends to an SQS destination) and the shard moves past it.
 * A failed invocation ends its shard's turn in the current pass: the retry comes with the
 * next pass (the poll interval plays Lambda's back-off). Checkpoints are kept per shard, in
 * a file when a data dir is given, so a restart resumes instead of replaying everything.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, type GetRecordsCommandOutput, type Shard } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { StreamBatchInfo } from '../application/ports';
import { toLambdaRecord } from '../adapters/dynamodb/streamRecords';
import { localClient } from './dynamo';

export type StreamHandler = (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>;

export interface StreamPollerOptions {
  /** DynamoDB Local's endpoint. */
  endpoint: string;
  tableName: string;
  handler: StreamHandler;
  /** A name for logs and files (default: the table name). */
  name?: string;
  /** Records per batch (Lambda's default: 100). */
  batchSize?: number;
  bisectBatchOnError?: boolean;
  /** Retries of a failed batch before it goes to the dead letters (default: 10, as the stack). */
  retryAttempts?: number;
  /** The mapping's filter criteria: records it refuses are skipped, as Lambda drops them. */
  filter?: (record: DynamoDBRecord) => boolean;
  /** Checkpoints and dead letters are kept here (files); in memory only when absent. */
  dataDir?: string;
  /** Called with each dead letter (after it is recorded). */
  onDeadLetter?: (letter: StreamDeadLetter) => void;
  /** Errors of background passes (start()); default: console.error. */
  onError?: (error: unknown) => void;
}

/** What Lambda sends to an SQS on-failure destination for a DynamoDB stream batch. */
export interface StreamDeadLetter {
  requestContext: { requestId: string; condition: 'RetryAttemptsExhausted'; approximateInvokeCount: number };
  responseContext: { functionError: 'Unhandled' | 'BatchItemFailures' };
  version: '1.0';
  timestamp: string;
  DDBStreamBatchInfo: StreamBatchInfo;
}

export interface DrainResult {
  /** Records the handler acknowledged. */
  delivered: number;
  /** Records handed over but not acknowledged: they come again, or went to the dead letters. */
  failed: number;
  /** Records sent to the dead letters in this pass. */
  deadLettered: number;
}

interface ShardProgress {
  /** Sequence number of the last record done; from the start of the shard when absent. */
  checkpoint?: string;
  /** Closed and read to its end. */
  finished?: boolean;
}

/** A failed batch still to retry: it starts just after the checkpoint. */
interface Retry {
  /** Failed invocations of the batch starting at this checkpoint. */
  attempts: number;
  /** Records per batch of the parts still to do (a bisected batch, or the rest of a partly failed one). */
  sizes: number[];
}

interface CheckpointFile {
  streamArn: string;
  shards: Record<string, ShardProgress>;
}

const seqOf = (r: DynamoDBRecord): string => r.dynamodb?.SequenceNumber ?? '';

/** GetRecords errors after which a new iterator at the checkpoint reads on; at most MAX_REFRESHES in a row. */
const REREAD = new Set(['TrimmedDataAccessException', 'ExpiredIteratorException']);
const MAX_REFRESHES = 5;

/** Lambda's `approximateArrivalOf{First,Last}Record`, from the records' creation times. */
const arrivalOf = (records: DynamoDBRecord[]): Pick<StreamBatchInfo, 'approximateArrivalOfFirstRecord' | 'approximateArrivalOfLastRecord'> => {
  const first = records[0]?.dynamodb?.ApproximateCreationDateTime;
  const last = records[records.length - 1]?.dynamodb?.ApproximateCreationDateTime;
  return first === undefined || last === undefined
    ? {}
    : { approximateArrivalOfFirstRecord: new Date(first * 1000).toISOString(), approximateArrivalOfLastRecord: new Date(last * 1000).toISOString() };
};

export class StreamPoller {
  readonly name: string;
  /**
   * Batches given up on, oldest first, until removed (removeDeadLetter: the redrive). Kept
   * in `stream-dead-letters-<name>.jsonl` in the data dir and read back at start, as a
   * queue keeps its messages across a consumer's restart.
   */
  readonly deadLetters: StreamDeadLetter[] = [];
  private readonly dynamo: DynamoDBClient;
  private readonly streams: DynamoDBStreamsClient;
  private readonly batchSize: number;
  private readonly retryAttempts: number;
  private streamArn: string | undefined;
  private progress = new Map<string, ShardProgress>();
  private readonly retries = new Map<string, Retry>();
  private running: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: StreamPollerOptions) {
    this.name = options.name ?? options.tableName;
    this.batchSize = options.batchSize ?? 100;
    this.retryAttempts = options.retryAttempts ?? 10;
    this.dynamo = localClient(options.endpoint);
    this.streams = new DynamoDBStreamsClient({
      endpoint: options.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
    const file = this.file('dead-letters', 'jsonl');
    if (file && existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) if (line.trim()) this.deadLetters.push(JSON.parse(line) as StreamDeadLetter);
    }
  }

  /** Removes a dead letter (it was redriven); false when there is none with that request id. */
  removeDeadLetter(requestId: string): boolean {
    const index = this.deadLetters.findIndex((l) => l.requestContext.requestId === requestId);
    if (index < 0) return false;
    this.deadLetters.splice(index, 1);
    const file = this.file('dead-letters', 'jsonl');
    if (file) {
      // Written whole and renamed: never half a file. Appends happen in this process only.
      writeFileSync(`${file}.tmp`, this.deadLetters.map((l) => JSON.stringify(l) + '\n').join(''));
      renameSync(`${file}.tmp`, file);
    }
    return true;
  }

  /** Delivers everything in the stream up to now (after any pass in progress); one pass. */
  drain(): Promise<DrainResult> {
    const pass = this.running.then(() => this.pass());
    this.running = pass.catch(() => undefined);
    return pass;
  }

  /** Polls every `intervalMs` in the background until stop(); never two passes at once. */
  start(intervalMs = 250): void {
    if (this.timer) return;
    let busy = false;
    // After a failed pass (the database is down, say), the next waits longer: x2 up to 10 s,
    // and the error is reported once per streak, not every interval.
    let failures = 0;
    let resumeAt = 0;
    this.timer = setInterval(() => {
      if (busy || Date.now() < resumeAt) return;
      busy = true;
      this.drain()
        .then(() => {
          if (failures > 0) (this.options.onError ?? console.error)(new Error(`resumed after ${failures} failed passes`));
          failures = 0;
        })
        .catch((e) => {
          if (failures === 0) (this.options.onError ?? console.error)(e);
          failures++;
          resumeAt = Date.now() + Math.min(10_000, intervalMs * 2 ** Math.min(failures, 6));
        })
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops background polling and waits for the pass in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** stop(), then releases the clients. */
  async close(): Promise<void> {
    await this.stop();
    this.dynamo.destroy();
    this.streams.destroy();
  }

  private file(kind: 'checkpoints' | 'dead-letters', ext: string): string | undefined {
    return this.options.dataDir ? join(this.options.dataDir, `stream-${kind}-${this.name}.${ext}`) : undefined;
  }

  private async arn(): Promise<string> {
    if (this.streamArn) return this.streamArn;
    const out = await this.dynamo.send(new DescribeTableCommand({ TableName: this.options.tableName }));
    const arn = out.Table?.LatestStreamArn;
    if (!arn) throw new Error(`table ${this.options.tableName} has no stream`);
    this.streamArn = arn;
    // Checkpoints of another stream (the table was made again) mean nothing here.
    const file = this.file('checkpoints', 'json');
    if (file) {
      try {
        const saved = JSON.parse(readFileSync(file, 'utf8')) as CheckpointFile;
        if (saved.streamArn === arn) this.progress = new Map(Object.entries(saved.shards));
      } catch {
        // none yet
      }
    }
    return arn;
  }

  private saveCheckpoints(streamArn: string): void {
    const file = this.file('checkpoints', 'json');
    if (!file) return;
    const content: CheckpointFile = { streamArn, shards: Object.fromEntries(this.progress) };
    writeFileSync(`${file}.tmp`, JSON.stringify(content) + '\n');
    renameSync(`${file}.tmp`, file); // never half a file after a crash
  }

  private async shards(streamArn: string): Promise<Shard[]> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const out = await this.streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }));
      shards.push(...(out.StreamDescription?.Shards ?? []));
      start = out.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  private async pass(): Promise<DrainResult> {
    const streamArn = await this.arn();
    const result: DrainResult = { delivered: 0, failed: 0, deadLettered: 0 };
    const shards = await this.shards(streamArn);
    const known = new Set(shards.map((s) => s.ShardId!));
    // Parents first: a shard waits until its parent (if still listed) is finished.
    const pending = shards.filter((s) => !this.progress.get(s.ShardId!)?.finished);
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (const shard of [...pending]) {
        const parent = shard.ParentShardId;
        if (parent && known.has(parent) && !this.progress.get(parent)?.finished) continue;
        pending.splice(pending.indexOf(shard), 1);
        if (await this.readShard(streamArn, shard, result)) progressed = true;
      }
    }
    return result;
  }

  /** Delivers one shard's records from its checkpoint until its end or a failure; true when it finished. */
  private async readShard(streamArn: string, shard: Shard, result: DrainResult): Promise<boolean> {
    const shardId = shard.ShardId!;
    const progress = this.progress.get(shardId) ?? {};
    this.progress.set(shardId, progress);
    let iterator = await this.iterator(streamArn, shardId, progress.checkpoint);
    let refreshes = 0;
    while (iterator) {
      const retry = this.retries.get(shardId);
      let out: GetRecordsCommandOutput;
      try {
        out = await this.streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: retry?.sizes[0] ?? this.batchSize }));
      } catch (e) {
        // DynamoDB Local now and then answers a fresh iterator with TrimmedDataAccessException
        // (aws/aws-sdk-java#2923; LocalStack works around it too); an iterator may also expire.
        // Lambda's mapping takes a new iterator at its checkpoint and goes on: so does this.
        if (!REREAD.has((e as Error).name) || ++refreshes > MAX_REFRESHES) throw e;
        iterator = await this.iterator(streamArn, shardId, progress.checkpoint);
        continue;
      }
      refreshes = 0;
      const read = (out.Records ?? []).map((r) => toLambdaRecord(r, streamArn));
      if (read.length === 0) {
        if (out.NextShardIterator) return false; // caught up with an open shard
        break; // a closed shard, read to its end
      }
      const ok = await this.deliver(streamArn, shardId, read, result);
      this.saveCheckpoints(streamArn);
      if (!ok) return false; // retried in the next pass
      iterator = out.NextShardIterator;
    }
    progress.finished = true;
    this.saveCheckpoints(streamArn);
    return true;
  }

  /** An iterator just after the checkpoint; from the shard's start when the checkpoint was trimmed (a replay is harmless). */
  private async iterator(streamArn: string, shardId: string, checkpoint: string | undefined): Promise<string | undefined> {
    const at = (position: { ShardIteratorType: 'TRIM_HORIZON' } | { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER'; SequenceNumber: string }) =>
      this.streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ...position })).then((out) => out.ShardIterator);
    if (!checkpoint) return at({ ShardIteratorType: 'TRIM_HORIZON' });
    try {
      return await at({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: checkpoint });
    } catch (e) {
      if ((e as Error).name !== 'TrimmedDataAccessException') throw e;
      return at({ ShardIteratorType: 'TRIM_HORIZON' });
    }
  }

  /** One invocation with the records read; moves the checkpoint. False when the shard must wait. */
  private async deliver(streamArn: string, shardId: string, read: DynamoDBRecord[], result: DrainResult): Promise<boolean> {
    const progress = this.progress.get(shardId)!;
    const retry = this.retries.get(shardId);
    const done = (upTo: number) => {
      // read[0..upTo) are done: the checkpoint moves past them.
      if (upTo > 0) progress.checkpoint = seqOf(read[upTo - 1]!);
    };
    const batch = this.options.filter ? read.filter(this.options.filter) : read;
    if (batch.length === 0) {
      done(read.length);
      this.nextPart(shardId);
      return true;
    }

    let failedAt: number | undefined; // index in `read` of the lowest failed record
    let thrown = false;
    try {
      const response = await this.options.handler({ Records: batch });
      const failures = response?.batchItemFailures ?? [];
      if (failures.length > 0) {
        const indexes = failures.map((f) => read.findIndex((r) => f.itemIdentifier && seqOf(r) === f.itemIdentifier && batch.includes(r)));
        // An identifier that names no record of the batch fails the whole batch (Lambda's rule).
        if (indexes.some((i) => i < 0)) thrown = true;
        else failedAt = Math.min(...indexes);
      }
    } catch {
      thrown = true;
    }
    if (thrown) failedAt = read.indexOf(batch[0]!);

    if (failedAt === undefined) {
      done(read.length);
      result.delivered += batch.length;
      this.nextPart(shardId);
      return true;
    }

    const acknowledged = batch.filter((r) => read.indexOf(r) < failedAt).length;
    const unacknowledged = batch.slice(acknowledged);
    result.delivered += acknowledged;
    result.failed += unacknowledged.length;
    done(failedAt);
    const rest = read.slice(failedAt);
    const laterParts = retry?.sizes.slice(1) ?? [];

    if (thrown && this.options.bisectBatchOnError && unacknowledged.length > 1) {
      // Split in two and retry each half; a split does not use up a retry.
      const half = Math.ceil(rest.length / 2);
      this.retries.set(shardId, { attempts: retry?.attempts ?? 0, sizes: [half, rest.length - half, ...laterParts] });
      return false;
    }
    // The batch starting at the same record failed again, or a later record failed for the first time.
    const attempts = acknowledged === 0 ? (retry?.attempts ?? 0) + 1 : 1;
    if (attempts > this.retryAttempts) {
      this.deadLetter(streamArn, shardId, unacknowledged, attempts, thrown);
      result.deadLettered += unacknowledged.length;
      done(read.length);
      this.nextPart(shardId);
      return true;
    }
    // The next batch starts at the failed record: with bisect, only the rest of this batch
    // (Lambda's rule when both bisect and ReportBatchItemFailures are on); else a full batch.
    this.retries.set(shardId, { attempts, sizes: this.options.bisectBatchOnError ? [rest.length, ...laterParts] : [] });
    return false;
  }

  /** The part at the checkpoint is done: the next one (of a split batch), or normal batches again. */
  private nextPart(shardId: string): void {
    const retry = this.retries.get(shardId);
    if (!retry || retry.sizes.length <= 1) this.retries.delete(shardId);
    else this.retries.set(shardId, { attempts: 0, sizes: retry.sizes.slice(1) });
  }

  private deadLetter(streamArn: string, shardId: string, records: DynamoDBRecord[], attempts: number, thrown: boolean): void {
    const letter: StreamDeadLetter = {
      requestContext: { requestId: randomUUID(), condition: 'RetryAttemptsExhausted', approximateInvokeCount: attempts },
      responseContext: { functionError: thrown ? 'Unhandled' : 'BatchItemFailures' },
      version: '1.0',
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId,
        startSequenceNumber: seqOf(records[0]!),
        endSequenceNumber: seqOf(records[records.length - 1]!),
        batchSize: records.length,
        streamArn,
        ...arrivalOf(records),
      },
    };
    this.deadLetters.push(letter);
    const file = this.file('dead-letters', 'jsonl');
    if (file) appendFileSync(file, JSON.stringify(letter) + '\n');
    this.options.onDeadLetter?.(letter);
  }
}
