/**
 * The disk-file reaction as a stream consumer: Created -> make the file and mark the
 * image ready (or failed); Revoked -> remove the file. Per-record failures are
 * reported (partial batch response) so one stuck host does not block the others.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { storedEventOf } from '../../adapters/dynamodb/projector';
import { onStoredEventForDiskFiles, type ServiceDeps } from '../../application/storageImages';
import { withCorrelationId } from '../shared/correlation';

export const diskFilesSink = (
  deps: () => ServiceDeps,
  /** `onRecordError`: told each record's error before it becomes a batch item failure (the redrive reports it). */
  options: { onRecordError?: (error: unknown, record: DynamoDBRecord) => void } = {},
) => ({
  processBatch: (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    const handleRecord = async (record: DynamoDBRecord) => {
      const stored = storedEventOf(record);
      // The reaction works under the id of the request that appended the event.
      try {
        if (stored) await withCorrelationId(stored.correlationId, () => onStoredEventForDiskFiles(deps(), stored));
      } catch (error) {
        options.onRecordError?.(error, record);
        throw error;
      }
    };
    return processPartialResponse(event, handleRecord, new BatchProcessor(EventType.DynamoDBStreams), {
      ...(context ? { context } : {}),
      throwOnFullBatchFailure: false,
    }) as Promise<DynamoDBBatchResponse>;
  },
});
