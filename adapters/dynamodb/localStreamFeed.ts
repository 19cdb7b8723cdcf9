/**
 * Local stand-in for DynamoDB Streams (dynalite has none): scans the events table and
 * feeds the items not yet delivered, as stream-shaped records (`INSERT`, NEW_IMAGE), to
 * the same projector code the Lambda runs. A per-stream high-water mark in memory
 * remembers what was delivered; after a restart everything is delivered again, which
 * the projector ignores (version condition). Each pass scans the whole table: fine for
 * a local data set, not meant for AWS.
 */
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { EventStore, StoredEvent } from '../../application/storePorts';
import { toEventItem } from './eventStore';

/** What the feed delivers to: a Projector, or anything with the same batch method. */
export interface StreamBatchSink {
  processBatch(event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse>;
}

export interface LocalStreamFeedOptions {
  /** Records per delivered batch (the Lambda event source default is 100). */
  batchSize?: number;
  /** Scan page size. */
  pageSize?: number;
  /** Errors of background passes (start()); default: console.error. */
  onError?: (error: unknown) => void;
  /** Name of the events table, put into the record's eventSourceARN. */
  tableName?: string;
}

export interface DrainResult {
  delivered: number;
  failed: number;
}

let sequence = 0n;
const nextSequenceNumber = (): string => (++sequence).toString().padStart(21, '0');

/** A stream record as DynamoDB Streams would deliver it for the insert of `event`. */
export const toStreamRecord = (event: StoredEvent, tableName = 'events'): DynamoDBRecord => {
  const newImage = marshall(toEventItem(event), { removeUndefinedValues: true });
  return {
    eventID: `${event.streamId}:${event.version}`,
    eventName: 'INSERT',
    eventSource: 'aws:dynamodb',
    eventVersion: '1.1',
    awsRegion: 'local',
    eventSourceARN: `arn:aws:dynamodb:local:000000000000:table/${tableName}/stream/local`,
    dynamodb: {
      Keys: marshall({ streamId: event.streamId, version: event.version }) as NonNullable<DynamoDBRecord['dynamodb']>['Keys'],
      NewImage: newImage as NonNullable<DynamoDBRecord['dynamodb']>['NewImage'],
      SequenceNumber: nextSequenceNumber(),
      SizeBytes: JSON.stringify(newImage).length,
      StreamViewType: 'NEW_IMAGE',
    },
  };
};

export class LocalStreamFeed {
  /** streamId -> highest version delivered successfully. */
  private readonly delivered = new Map<string, number>();
  private running: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly batchSize: number;

  constructor(
    private readonly events: Pick<EventStore, 'scanAll'>,
    private readonly sink: StreamBatchSink,
    private readonly options: LocalStreamFeedOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 100;
  }

  /** Delivers everything appended so far (and waits for any pass in progress). */
  drain(): Promise<DrainResult> {
    const pass = this.running.then(() => this.pass());
    this.running = pass.catch(() => undefined);
    return pass;
  }

  /** Drains every `intervalMs` in the background until stop(). */
  start(intervalMs = 250): void {
    if (this.timer) return;
    let busy = false;
    this.timer = setInterval(() => {
      if (busy) return; // a pass is still running: do not queue another behind it
      busy = true;
      this.drain()
        .catch((e) => (this.options.onError ?? console.error)(e))
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Forgets what was delivered: the next drain delivers the whole log again (replay). */
  reset(): void {
    this.delivered.clear();
  }

  private async pass(): Promise<DrainResult> {
    // What is new, per stream, in version order and without gaps after the high-water mark.
    const pending = new Map<string, StoredEvent[]>();
    for await (const page of this.events.scanAll({ pageSize: this.options.pageSize })) {
      for (const event of page) {
        if (event.version <= (this.delivered.get(event.streamId) ?? 0)) continue;
        const list = pending.get(event.streamId) ?? [];
        list.push(event);
        pending.set(event.streamId, list);
      }
    }
    const queue: StoredEvent[] = [];
    for (const [streamId, list] of pending) {
      list.sort((a, b) => a.version - b.version);
      let expected = (this.delivered.get(streamId) ?? 0) + 1;
      for (const event of list) {
        if (event.version !== expected) break; // not visible yet: next pass
        queue.push(event);
        expected++;
      }
    }
    let delivered = 0;
    let failed = 0;
    const blocked = new Set<string>(); // streams with a failure in this pass: deliver no later version
    for (let i = 0; i < queue.length; i += this.batchSize) {
      const chunk = queue.slice(i, i + this.batchSize).filter((e) => !blocked.has(e.streamId));
      if (chunk.length === 0) continue;
      const records = chunk.map((e) => toStreamRecord(e, this.options.tableName));
      let failedIds: Set<string>;
      try {
        const response = await this.sink.processBatch({ Records: records });
        failedIds = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      } catch {
        failedIds = new Set(records.map((r) => r.dynamodb?.SequenceNumber ?? ''));
      }
      chunk.forEach((event, j) => {
        if (blocked.has(event.streamId)) return;
        if (failedIds.has(records[j]?.dynamodb?.SequenceNumber ?? '')) {
          blocked.add(event.streamId);
          failed++;
          return;
        }
        this.delivered.set(event.streamId, event.version);
        delivered++;
      });
    }
    return { delivered, failed };
  }
}
