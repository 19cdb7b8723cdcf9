/**
 * The quota ledger: one control item per user, `quota#<userId>`, with `usedMb` and one
 * top-level attribute `img#<imageId>` = sizeMb per image counted. It is written only
 * inside command steps (quotaUpdates): Created reserves, Resized grows, Revoked
 * releases, in the same transaction as the event, so the ledger is exact under any
 * interleaving and needs no periodic repair.
 *
 * A user's own limit (set by an admin) is the item's `limitMb`; without it the
 * deployment's default holds. A condition cannot read one attribute to compute
 * another's bound, so a reserve is written for one case at a time: "no own limit and
 * room under the default" (one request, the common case), or "own limit = the known
 * value and room under it" (application/quotas.ts retries with it when the first is
 * refused: the cancelled transaction's ALL_OLD item names the limit, no read needed).
 */
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { QuotaExceededError, type QuotaLedger, type QuotaLimit, type StepEffects } from '../../application/storePorts';

export const quotaKey = (userId: number): string => `quota#${userId}`;
export const IMAGE_PREFIX = 'img#';
const imageAttr = (imageId: number): string => `${IMAGE_PREFIX}${imageId}`;

export interface LedgerEntry {
  userId: number;
  usedMb: number;
  /** The user's own limit; absent: the deployment's default. */
  limitMb?: number;
  /** imageId -> sizeMb */
  images: Record<number, number>;
}

const toEntry = (userId: number, item: Record<string, unknown> | undefined): LedgerEntry => {
  const images: Record<number, number> = {};
  for (const [name, value] of Object.entries(item ?? {})) {
    if (name.startsWith(IMAGE_PREFIX)) images[Number(name.slice(IMAGE_PREFIX.length))] = value as number;
  }
  const limitMb = item?.limitMb as number | undefined;
  return { userId, usedMb: (item?.usedMb as number | undefined) ?? 0, ...(limitMb === undefined ? {} : { limitMb }), images };
};

/**
 * The part of a quota condition that says which limit binds, and that `used` more MB fit
 * under it: `#used` is the usage before the update.
 */
const limitCondition = (limit: QuotaLimit, addMb: number): { condition: string; values: Record<string, unknown> } => {
  const room = limit.limitMb - addMb;
  const which = limit.ownLimit ? 'limitMb = :limit' : 'attribute_not_exists(limitMb)';
  // A user with no item yet has used nothing: room >= 0 is enough (no attribute to compare).
  const fits = room >= 0 ? '(attribute_not_exists(usedMb) OR usedMb <= :room)' : 'usedMb <= :room';
  return { condition: `${which} AND ${fits}`, values: { ':room': room, ...(limit.ownLimit ? { ':limit': limit.limitMb } : {}) } };
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
  const { reserve, grow, release, shrink } = effects.quota ?? {};
  const updates: QuotaUpdate[] = [];
  if (reserve) {
    const { userId, imageId, sizeMb, limitMb } = reserve;
    if (!Number.isSafeInteger(sizeMb) || sizeMb < 0) throw new RangeError(`bad sizeMb ${sizeMb}`);
    const limit = limitCondition({ limitMb, ownLimit: reserve.ownLimit === true }, sizeMb);
    updates.push({
      userId,
      limitMb,
      expression: {
        UpdateExpression: 'SET #img = :size, usedMb = if_not_exists(usedMb, :zero) + :size, userId = :u',
        // Counted once per image, and only while the total stays within the limit that binds this user.
        ConditionExpression: `attribute_not_exists(#img) AND ${limit.condition}`,
        ExpressionAttributeNames: { '#img': imageAttr(imageId) },
        ExpressionAttributeValues: { ':size': sizeMb, ':zero': 0, ':u': userId, ...limit.values },
      },
    });
  }
  if (grow) {
    const { userId, imageId, fromMb, toMb, limitMb } = grow;
    if (!Number.isSafeInteger(toMb) || toMb <= fromMb) throw new RangeError(`bad growth ${fromMb} -> ${toMb}`);
    const limit = limitCondition({ limitMb, ownLimit: grow.ownLimit === true }, toMb - fromMb);
    updates.push({
      userId,
      limitMb,
      expression: {
        UpdateExpression: 'SET #img = :to, usedMb = usedMb + :diff',
        // The image is counted at its old size (not grown twice), and the difference fits.
        ConditionExpression: `#img = :from AND ${limit.condition}`,
        ExpressionAttributeNames: { '#img': imageAttr(imageId) },
        ExpressionAttributeValues: { ':from': fromMb, ':to': toMb, ':diff': toMb - fromMb, ...limit.values },
      },
    });
  }
  if (shrink) {
    const { userId, imageId, fromMb, toMb } = shrink;
    if (!Number.isSafeInteger(toMb) || toMb >= fromMb || toMb < 0) throw new RangeError(`bad shrink ${fromMb} -> ${toMb}`);
    updates.push({
      userId,
      limitMb: Number.POSITIVE_INFINITY,
      expression: {
        UpdateExpression: 'SET #img = :to, usedMb = usedMb - :diff',
        ConditionExpression: '#img = :from',
        ExpressionAttributeNames: { '#img': imageAttr(imageId) },
        ExpressionAttributeValues: { ':from': fromMb, ':to': toMb, ':diff': fromMb - toMb },
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

  /**
   * Sets (or with null removes) the user's own limit. Outside any command step: the
   * next reserve reads it in its condition, so a create racing this write is checked
   * against one limit or the other, never against none. `limitSetBy`/`limitSetAt` keep
   * the last change on the item (the log line is the audit trail).
   */
  async setLimit(userId: number, limitMb: number | null, audit: { by: string; at: string }): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: quotaKey(userId) },
        ...(limitMb === null
          ? {
              UpdateExpression: 'REMOVE limitMb SET userId = :u, limitSetBy = :by, limitSetAt = :at',
              ExpressionAttributeValues: { ':u': userId, ':by': audit.by, ':at': audit.at },
            }
          : {
              UpdateExpression: 'SET limitMb = :l, userId = :u, limitSetBy = :by, limitSetAt = :at',
              ExpressionAttributeValues: { ':l': limitMb, ':u': userId, ':by': audit.by, ':at': audit.at },
            }),
      }),
    );
  }
}
