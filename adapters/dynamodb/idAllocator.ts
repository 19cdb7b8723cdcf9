/**
 * Integer image ids from the control item `counter#image`: one atomic `ADD next :block`
 * reserves a block of ids for this process, so most creates cost no request at all.
 * Ids are unique and increasing per process, not dense: a process that stops leaves
 * the rest of its block unused (see docs/event-store.md). Ids start at 1.
 */
import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { IdAllocator } from '../../application/storePorts';

export const IMAGE_COUNTER_KEY = 'counter#image';
export const DEFAULT_ID_BLOCK = 20;

export class DynamoIdAllocator implements IdAllocator {
  private nextId = 0;
  private lastId = 0; // the block is nextId..lastId
  private refill: Promise<void> | undefined;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
    readonly blockSize: number = DEFAULT_ID_BLOCK,
    readonly counterKey: string = IMAGE_COUNTER_KEY,
  ) {
    if (!Number.isSafeInteger(blockSize) || blockSize < 1) throw new RangeError(`bad id block size ${blockSize}`);
  }

  async nextImageId(): Promise<number> {
    for (;;) {
      if (this.nextId > 0 && this.nextId <= this.lastId) return this.nextId++;
      // One refill at a time; concurrent callers wait for it and take from the block.
      this.refill ??= this.takeBlock().finally(() => {
        this.refill = undefined;
      });
      await this.refill;
    }
  }

  private async takeBlock(): Promise<void> {
    const out = await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: this.counterKey },
        UpdateExpression: 'ADD #next :block',
        ExpressionAttributeNames: { '#next': 'next' },
        ExpressionAttributeValues: { ':block': this.blockSize },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const high = out.Attributes?.next as number;
    this.nextId = high - this.blockSize + 1;
    this.lastId = high;
  }
}
