/**
 * The change notifications as a stream consumer: each stored event that changed an
 * image's state or attachment is published (application/changeNotifications.ts).
 * In stream order, with per-record failures reported (partial batch response).
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { storedEventOf } from '../../adapters/dynamodb/projector';
import { publishChangeOf, type ChangePublisher } from '../../application/changeNotifications';
import { withCorrelationId } from '../shared/correlation';

export const changeNotificationsSink = (publisher: () => ChangePublisher) => ({
  processBatch: (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    const handleRecord = async (record: DynamoDBRecord) => {
      const stored = storedEventOf(record);
      if (stored) await withCorrelationId(stored.correlationId, () => publishChangeOf(publisher(), stored));
    };
    return processPartialResponse(event, handleRecord, new BatchProcessor(EventType.DynamoDBStreams), {
      ...(context ? { context } : {}),
      processInParallel: false,
      throwOnFullBatchFailure: false,
    }) as Promise<DynamoDBBatchResponse>;
  },
});
