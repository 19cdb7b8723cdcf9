/**
 * The dead letters of a stream consumer in an SQS queue (the on-failure destination of
 * a Lambda event source mapping): what the redrive reads and deletes. A message body is
 * Lambda's invocation record, `{requestContext, responseContext, version, timestamp,
 * DDBStreamBatchInfo}`; a message that is not one is returned without `batch` (and kept).
 */
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeadLetter, DeadLetters, StreamBatchInfo } from '../../application/ports';

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** The batch a dead letter describes, or undefined when the body is not a stream consumer's record. */
export const streamBatchOf = (body: string): { batch?: StreamBatchInfo; timestamp?: string } => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return {};
  }
  const record = parsed as { timestamp?: unknown; DDBStreamBatchInfo?: Record<string, unknown> } | null;
  const info = record?.DDBStreamBatchInfo;
  const timestamp = isText(record?.timestamp) ? { timestamp: record.timestamp } : {};
  if (!info || !isText(info.shardId) || !isText(info.streamArn) || !/^\d+$/.test(String(info.startSequenceNumber)) || !/^\d+$/.test(String(info.endSequenceNumber))) {
    return timestamp;
  }
  return {
    ...timestamp,
    batch: {
      shardId: info.shardId,
      streamArn: info.streamArn,
      startSequenceNumber: String(info.startSequenceNumber),
      endSequenceNumber: String(info.endSequenceNumber),
      batchSize: typeof info.batchSize === 'number' ? info.batchSize : 1,
      ...(isText(info.approximateArrivalOfFirstRecord) ? { approximateArrivalOfFirstRecord: info.approximateArrivalOfFirstRecord } : {}),
      ...(isText(info.approximateArrivalOfLastRecord) ? { approximateArrivalOfLastRecord: info.approximateArrivalOfLastRecord } : {}),
    },
  };
};

export class SqsDeadLetters implements DeadLetters {
  readonly where: string;
  private readonly receipts = new Map<string, string>();

  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    /** How long a received message stays hidden from other receivers (and from this run's next receive). */
    private readonly visibilityTimeoutSeconds = 900,
  ) {
    this.where = `SQS ${queueUrl}`;
  }

  async receive(): Promise<DeadLetter[]> {
    // Long polling asks every SQS server: an empty answer means the queue has nothing visible.
    const out = await this.client.send(
      new ReceiveMessageCommand({ QueueUrl: this.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: this.visibilityTimeoutSeconds }),
    );
    return (out.Messages ?? []).map((m) => {
      const id = m.MessageId ?? m.ReceiptHandle ?? '';
      this.receipts.set(id, m.ReceiptHandle ?? '');
      const body = m.Body ?? '';
      return { id, body, ...streamBatchOf(body) };
    });
  }

  async delete(letter: DeadLetter): Promise<void> {
    const receipt = this.receipts.get(letter.id);
    if (!receipt) throw new Error(`dead letter ${letter.id} was not received here`);
    await this.client.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receipt }));
    this.receipts.delete(letter.id);
  }
}
