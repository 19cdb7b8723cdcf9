/**
 * The change notifications as a stream consumer: each stored event that changed an
 * image's state or attachment is published (application/changeNotifications.ts).
 * In stream order, with per-record failures reported (partial batch response).
 *
 * A refused publish (PutEvents failed, or answered 200 with the entry in
 * FailedEntryCount, e.g. throttled) fails its record, and every later record of the
 * batch is reported failed without being tried: the stream retries from the first
 * failed record anyway, so trying the later ones now would only publish them twice and
 * out of order. Records before it are acknowledged and not published again.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { storedEventOf } from '../../adapters/dynamodb/projector';
import { publishChangeOf, type ChangePublisher } from '../../application/changeNotifications';
import { withCorrelationId } from '../shared/correlation';

/** The error of a record not tried because an earlier record of its batch failed. */
export class EarlierRecordFailedError extends Error {
  constructor(sequenceNumber: string | undefined) {
    super(`not published: an earlier record of the batch failed (this one, ${sequenceNumber ?? '?'}, comes again with the retry)`);
    this.name = 'EarlierRecordFailedError';
  }
}

export const changeNotificationsSink = (publisher: () => ChangePublisher) => ({
  processBatch: (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    let failed = false;
    const handleRecord = async (record: DynamoDBRecord) => {
      if (failed) throw new EarlierRecordFailedError(record.dynamodb?.SequenceNumber);
      try {
        const stored = storedEventOf(record);
        if (stored) await withCorrelationId(stored.correlationId, () => publishChangeOf(publisher(), stored));
      } catch (error) {
        failed = true;
        throw error;
      }
    };
    return processPartialResponse(event, handleRecord, new BatchProcessor(EventType.DynamoDBStreams), {
      ...(context ? { context } : {}),
      processInParallel: false,
      throwOnFullBatchFailure: false,
    }) as Promise<DynamoDBBatchResponse>;
  },
});
