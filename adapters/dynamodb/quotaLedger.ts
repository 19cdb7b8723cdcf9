/**
 * The quota ledger: one control item per user, `quota#<userId>`, with `usedMb` and one
 * top-level attribute `img#<imageId>` = sizeMb per image counted. A reserve is ONE
 * conditional UpdateItem (also for a user's first image: no nested map to create).
 */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { QuotaLedger, ReserveResult } from '../../application/storePorts';
import { isConditionFailed } from './dynamo';

export const quotaKey = (userId: number): string => `quota#${userId}`;
export const IMAGE_PREFIX = 'img#';
const imageAttr = (imageId: number): string => `${IMAGE_PREFIX}${imageId}`;

export interface LedgerEntry {
  userId: number;
  usedMb: number;
  /** imageId -> sizeMb */
  images: Record<number, number>;
}

const toEntry = (userId: number, item: Record<string, unknown> | undefined): LedgerEntry => {
  const images: Record<number, number> = {};
  for (const [name, value] of Object.entries(item ?? {})) {
    if (name.startsWith(IMAGE_PREFIX)) images[Number(name.slice(IMAGE_PREFIX.length))] = value as number;
  }
  return { userId, usedMb: (item?.usedMb as number | undefined) ?? 0, images };
};

const MAX_ROUNDS = 5;

export class DynamoQuotaLedger implements QuotaLedger {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  /** The user's ledger, read consistently. */
  async entry(userId: number): Promise<LedgerEntry> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: quotaKey(userId) }, ConsistentRead: true }));
    return toEntry(userId, out.Item);
  }

  async reserve(userId: number, imageId: number, sizeMb: number, limitMb: number): Promise<ReserveResult> {
    if (!Number.isSafeInteger(sizeMb) || sizeMb < 0) throw new RangeError(`bad sizeMb ${sizeMb}`);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (sizeMb <= limitMb) {
        try {
          await this.doc.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: { pk: quotaKey(userId) },
              UpdateExpression: 'SET #img = :size, usedMb = if_not_exists(usedMb, :zero) + :size, userId = :u',
              ConditionExpression: 'attribute_not_exists(#img) AND (attribute_not_exists(usedMb) OR usedMb <= :room)',
              ExpressionAttributeNames: { '#img': imageAttr(imageId) },
              ExpressionAttributeValues: { ':size': sizeMb, ':zero': 0, ':u': userId, ':room': limitMb - sizeMb },
            }),
          );
          return { ok: true };
        } catch (e) {
          if (!isConditionFailed(e)) throw e;
        }
      }
      const entry = await this.entry(userId);
      if (entry.images[imageId] !== undefined) return { ok: true }; // reserved already for this image
      if (sizeMb > limitMb || entry.usedMb + sizeMb > limitMb) return { ok: false, usedMb: entry.usedMb };
      // Room was made between the write and the read: try again.
    }
    return { ok: false, usedMb: (await this.entry(userId)).usedMb };
  }

  async release(userId: number, imageId: number, sizeMb?: number): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // First round with a known size: no read (the condition checks it); else read it.
      const size = round === 0 && sizeMb !== undefined ? sizeMb : (await this.entry(userId)).images[imageId];
      if (size === undefined) return; // released already
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: quotaKey(userId) },
            UpdateExpression: 'REMOVE #img SET usedMb = usedMb - :size',
            ConditionExpression: '#img = :size',
            ExpressionAttributeNames: { '#img': imageAttr(imageId) },
            ExpressionAttributeValues: { ':size': size },
          }),
        );
        return;
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
      }
    }
    throw new Error(`quota release of image ${imageId} for user ${userId} kept racing`);
  }

  async usedMb(userId: number): Promise<number> {
    return (await this.entry(userId)).usedMb;
  }

  /**
   * Sets the ledger to exactly `images` (the reconciler's repair from the log). Last
   * writer wins: run it when no create/revoke of this user is in flight, or re-run.
   */
  async reset(userId: number, images: Record<number, number>): Promise<void> {
    const item: Record<string, unknown> = { pk: quotaKey(userId), userId, usedMb: 0 };
    let used = 0;
    for (const [id, size] of Object.entries(images)) {
      item[`${IMAGE_PREFIX}${id}`] = size;
      used += size;
    }
    item.usedMb = used;
    await this.doc.send(new PutCommand({ TableName: this.tableName, Item: item }));
  }
}
