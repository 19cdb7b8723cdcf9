/**
 * The reconciler's cursor: the control item `reconciler#cursor` holds the last host a
 * run that was cut short got to, so the next run resumes after it (application/reconciler.ts).
 * Every write is a Put guarded by the version the run last read or wrote: two runs
 * cannot move it back and forth; the one that lost the race stops writing it.
 */
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ReconcilerCheckpoint, ReconcilerCursor } from '../../application/storePorts';
import { isConditionFailed } from './dynamo';

export const RECONCILER_CURSOR_KEY = 'reconciler#cursor';

export class DynamoReconcilerCursor implements ReconcilerCursor {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly clock: () => string = () => new Date().toISOString(),
  ) {}

  async read(): Promise<ReconcilerCheckpoint> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: RECONCILER_CURSOR_KEY }, ConsistentRead: true }));
    const item = out.Item;
    if (!item) return { version: 0 };
    return { version: item.version as number, ...(typeof item.afterHost === 'string' ? { afterHost: item.afterHost } : {}) };
  }

  async write(afterHost: string | undefined, expected: number): Promise<number | false> {
    const version = expected + 1;
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: RECONCILER_CURSOR_KEY, version, updatedAt: this.clock(), ...(afterHost !== undefined ? { afterHost } : {}) },
          ...(expected === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: '#version = :expected', ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: { ':expected': expected } }),
        }),
      );
      return version;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }
}
