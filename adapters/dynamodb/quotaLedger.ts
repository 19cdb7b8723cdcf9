/**
 * The quota ledger: one control item per user, `quota#<userId>`, with `usedMb` and one
 * top-level attribute `img#<imageId>` = sizeMb per image counted. It is written only
 * inside command steps (quotaUpdates): Created reserves, Revoked releases, in the same
 * transaction as the event, so the ledger is exact under any interleaving and needs no
 * periodic repair.
 */
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { QuotaExceededError, type QuotaLedger, type StepEffects } from '../../application/storePorts';

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

export interface QuotaUpdate {
  userId: number;
  limitMb: number;
  expression: {
    UpdateExpression: string;
    ConditionExpression: string;
    ExpressionAttributeNames: Record<string, string>;
    ExpressionAttributeValues: Record<string, unknown>;
  };
}

/** The ledger item updates of a command step (at most one user's item per step). */
export const quotaUpdates = (effects: StepEffects): QuotaUpdate[] => {
  const { reserve, release } = effects.quota ?? {};
  const updates: QuotaUpdate[] = [];
  if (reserve) {
    const { userId, imageId, sizeMb, limitMb } = reserve;
    if (!Number.isSafeInteger(sizeMb) || sizeMb < 0) throw new RangeError(`bad sizeMb ${sizeMb}`);
    if (sizeMb > limitMb) throw new QuotaExceededError(userId, 0, limitMb);
    updates.push({
      userId,
      limitMb,
      expression: {
        UpdateExpression: 'SET #img = :size, usedMb = if_not_exists(usedMb, :zero) + :size, userId = :u',
        // Counted once per image, and only while the total stays within the limit.
        ConditionExpression: 'attribute_not_exists(#img) AND (attribute_not_exists(usedMb) OR usedMb <= :room)',
        ExpressionAttributeNames: { '#img': imageAttr(imageId) },
        ExpressionAttributeValues: { ':size': sizeMb, ':zero': 0, ':u': userId, ':room': limitMb - sizeMb },
      },
    });
  }
  if (release) {
    const { userId, imageId, sizeMb } = release;
    updates.push({
      userId,
      limitMb: Number.POSITIVE_INFINITY,
      expression: {
        UpdateExpression: 'REMOVE #img SET usedMb = usedMb - :size',
        ConditionExpression: '#img = :size',
        ExpressionAttributeNames: { '#img': imageAttr(imageId) },
        ExpressionAttributeValues: { ':size': sizeMb },
      },
    });
  }
  return updates;
};

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

  async usedMb(userId: number): Promise<number> {
    return (await this.entry(userId)).usedMb;
  }
}
