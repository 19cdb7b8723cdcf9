/**
 * Per-user storage quotas (SPEC 4.7): what a user uses and may use, an admin setting a
 * user's own limit, and the rule every quota-checked command step follows to be checked
 * against the limit that binds its user.
 *
 * The limit lives on the user's ledger item (`quota#<userId>`, `limitMb`); the
 * deployment's `defaultQuotaMb` holds for users without one. A quota-checked step
 * (create, resize) is first written as for a user without an own limit: one
 * TransactWriteItems whose quota condition is `attribute_not_exists(limitMb) AND usedMb
 * <= :defaultRoom`. Only when that is refused and the refused item shows an own limit
 * (the cancellation reason carries the item: no read), the step is written again with
 * `limitMb = :known AND usedMb <= :room`. Cost: users without an own limit pay nothing
 * extra; a user with one pays one extra (cancelled) transaction per create or resize.
 * A limit changed between the two attempts refuses the second too, which is retried the
 * same way (bounded).
 */
import { fail } from '../domain/errors';
import type { Actor } from '../domain/storageImage';
import { now, type ServiceDeps } from './service';
import { QuotaExceededError, type QuotaLimit } from './storePorts';

export interface QuotaView {
  userId: number;
  limitMb: number;
  usedMb: number;
  /** Whether `limitMb` is the user's own (false: the deployment's default). */
  ownLimit: boolean;
}

/** The largest limit an admin may set (MB): well inside a safe integer, 1 EiB. */
export const QUOTA_MAX_MB = 1_099_511_627_776;

export const quotaOf = async (deps: ServiceDeps, userId: number): Promise<QuotaView> => {
  const entry = await deps.quota.entry(userId);
  return entry.limitMb === undefined
    ? { userId, limitMb: deps.config.defaultQuotaMb, usedMb: entry.usedMb, ownLimit: false }
    : { userId, limitMb: entry.limitMb, usedMb: entry.usedMb, ownLimit: true };
};

/**
 * An admin sets a user's own limit, or removes it (null: the default holds again). A
 * limit below what the user uses now is allowed (EBS and Cinder allow it too): nothing
 * is taken away, but the user can neither create nor grow until under it again.
 */
export const setQuota = async (deps: ServiceDeps, userId: number, limitMb: number | null, actor: Actor): Promise<QuotaView> => {
  if (limitMb !== null && (!Number.isSafeInteger(limitMb) || limitMb < 0 || limitMb > QUOTA_MAX_MB)) {
    fail('validation', `limitMb must be a whole number of MB from 0 to ${QUOTA_MAX_MB}, or null for the default.`);
  }
  const by = actor.kind === 'admin' ? `admin:${actor.userId}` : actor.kind === 'system' ? `system:${actor.reason}` : fail('admin_required', 'Only an administrator sets quotas.');
  const before = await deps.quota.entry(userId);
  await deps.quota.setLimit(userId, limitMb, { by, at: now(deps) });
  // The audit trail of quota changes: one structured log line each (who, whom, from, to).
  deps.logger.info('quota limit set', { audit: 'quota', userId, by, fromMb: before.limitMb ?? null, toMb: limitMb, defaultMb: deps.config.defaultQuotaMb });
  return quotaOf(deps, userId);
};

/**
 * Runs a quota-checked step against the limit that binds `userId` (see the module
 * header). `step` commits with the QuotaLimit it is given; a QuotaExceededError it
 * throws is retried with the user's own limit when the refused item has one, else it
 * becomes `user_storage_limit` with `message(error, limitMb)`.
 */
export const withUserLimit = async <T>(
  deps: ServiceDeps,
  step: (limit: QuotaLimit) => Promise<T>,
  message: (error: QuotaExceededError, limitMb: number) => string,
): Promise<T> => {
  let limit: QuotaLimit = { limitMb: deps.config.defaultQuotaMb };
  for (let attempt = 0; ; attempt++) {
    try {
      return await step(limit);
    } catch (error) {
      if (!(error instanceof QuotaExceededError)) throw error;
      const own = error.ownLimitMb;
      const sameLimit = own === undefined ? !limit.ownLimit : limit.ownLimit === true && limit.limitMb === own;
      // Refused under the limit that really binds: the quota is full.
      if (sameLimit || attempt >= 3) return fail('user_storage_limit', message(error, own ?? deps.config.defaultQuotaMb));
      limit = own === undefined ? { limitMb: deps.config.defaultQuotaMb } : { limitMb: own, ownLimit: true };
    }
  }
};
