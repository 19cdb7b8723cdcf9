/**
 * The projector: DynamoDB Stream records of the events table (NEW_IMAGE) -> StoredEvent
 * -> read model `apply` (+ pluggable reactions). Idempotent by construction: a row is
 * written only if its version is newer, so redelivered, reordered and replayed records
 * change nothing. On AWS it runs as a Lambda with partial batch responses (Powertools
 * BatchProcessor); locally local/streamPoller.ts reads DynamoDB Local's stream into it.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { ImageReadModel, StoredEvent } from '../../application/storePorts';
import { fromEventItem } from './eventStore';

/**
 * A reaction to a stored event (e.g. make the disk file on Created). Called at least
 * once per event, after the read model is updated, also for redelivered events; a
 * retried batch may call it again after later events of the same stream were seen.
 * So a hook must be idempotent and should act on the stream's current state.
 */
export type StoredEventHook = (event: StoredEvent) => Promise<void>;

/** The StoredEvent of a stream record, or undefined for records that carry none (REMOVE, MODIFY of nothing). */
export const storedEventOf = (record: DynamoDBRecord): StoredEvent | undefined => {
  if (record.eventName === 'REMOVE') return undefined;
  const image = record.dynamodb?.NewImage;
  if (!image) return undefined;
  const item = unmarshall(image as unknown as Record<string, AttributeValue>);
  if (typeof item.streamId !== 'string' || typeof item.version !== 'number') return undefined;
  return fromEventItem(item);
};

export interface ProjectorOptions {
  readModel: ImageReadModel;
  onStoredEvent?: StoredEventHook[];
}

export class Projector {
  private readonly readModel: ImageReadModel;
  private readonly hooks: StoredEventHook[];

  constructor(options: ProjectorOptions) {
    this.readModel = options.readModel;
    this.hooks = [...(options.onStoredEvent ?? [])];
  }

  /** Plugs in another reaction. */
  onStoredEvent(hook: StoredEventHook): void {
    this.hooks.push(hook);
  }

  /** Projects one event: the read model first, then every hook (in order). */
  async project(event: StoredEvent): Promise<'applied' | 'stale'> {
    const outcome = await this.readModel.apply(event);
    for (const hook of this.hooks) await hook(event);
    return outcome;
  }

  /** The record handler: throws to report this record as failed. */
  readonly handleRecord = async (record: DynamoDBRecord): Promise<void> => {
    const event = storedEventOf(record);
    if (event) await this.project(event);
  };

  /**
   * A batch of stream records, processed one after the other (in stream order), with
   * per-record failures reported as `batchItemFailures` (by SequenceNumber).
   */
  async processBatch(event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> {
    const processor = new BatchProcessor(EventType.DynamoDBStreams);
    return processPartialResponse(event, this.handleRecord, processor, {
      ...(context ? { context } : {}),
      processInParallel: false,
      throwOnFullBatchFailure: false,
    }) as Promise<DynamoDBBatchResponse>;
  }

  /** A Lambda handler (configure the event source mapping with ReportBatchItemFailures). */
  handler(): (event: DynamoDBStreamEvent, context: Context) => Promise<DynamoDBBatchResponse> {
    return (event, context) => this.processBatch(event, context);
  }
}

/** Lambda-ready: `export const handler = makeProjectorHandler({ readModel, onStoredEvent })`. */
export const makeProjectorHandler = (options: ProjectorOptions) => new Projector(options).handler();
