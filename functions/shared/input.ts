/**
 * Input checks shared by both APIs: zod schemas for bodies, integer ids in paths
 * and queries. Every refusal is a 400 `validation` (or the CC1 code that fits).
 */
// zod/mini, not classic zod: the same checks and messages at a fraction of the API bundles'
// size and import time (docs/benchmarks.md, figure 6).
import * as z from 'zod/mini';
import { en } from 'zod/locales';
import { DISK_CONTROLLERS, FILESYSTEMS, IMAGE_STATES, type ImageStateName } from '../../domain/catalog';
import { DomainError } from '../../domain/errors';

import { ID_MAX, ID_PATTERN } from '../../domain/ids';

export { ID_PATTERN };

export const parseId = (value: unknown, what: string): number => {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !ID_PATTERN.test(text)) {
    throw new DomainError('validation', `${what} must be a positive integer.`);
  }
  return Number(text);
};

z.config(en()); // mini carries no messages by default: the classic API's English ones

/** An id in a JSON body: an integer within domain/ids.ts's rule. */
export const id = z.int().check(z.positive(), z.maximum(ID_MAX));

const controllerNames = DISK_CONTROLLERS.map((c) => c.name) as [string, ...string[]];
const filesystemNames = FILESYSTEMS.map((f) => f.name) as [string, ...string[]];

export const controllerName = z.enum(controllerNames as ['virtio', ...('scsi' | 'ide' | 'sata' | 'usb')[]]);
export const filesystemName = z.enum(filesystemNames as ['raw', ...('fat32' | 'ext4' | 'reiserfs' | 'xfs' | 'ntfs')[]]);

/**
 * Parses `body` with `schema`; the first problem becomes the message. `image_invalid_size`
 * for a bad size, as CC1 answered.
 */
export const parseBody = <T>(schema: z.ZodMiniType<T>, body: unknown): T => {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.') || 'body';
  const code = /^(sizeMb|size)$/.test(field) ? 'image_invalid_size' : 'validation';
  throw new DomainError(code, `${field}: ${issue.message}`);
};

/** `?limit=` (1..1000, default 100) and `?nextToken=`. */
export const parsePage = (query: Record<string, string | undefined> | undefined): { limit: number; nextToken?: string } => {
  const rawLimit = query?.limit;
  let limit = 100;
  if (rawLimit !== undefined) {
    if (!/^[0-9]{1,4}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 1000) {
      throw new DomainError('validation', 'limit must be an integer from 1 to 1000.');
    }
    limit = Number(rawLimit);
  }
  const nextToken = query?.nextToken;
  if (nextToken !== undefined && !/^[A-Za-z0-9_-]{1,2048}$/.test(nextToken)) {
    throw new DomainError('validation', 'nextToken is not a token this API gave.');
  }
  return nextToken ? { limit, nextToken } : { limit };
};

export const parseBoolean = (value: string | undefined, what: string): boolean => {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new DomainError('validation', `${what} must be true or false.`);
};

/** `?state=` (a CC1 state name) and `?vmId=` (an id): what a list may be narrowed to. */
export const parseListFilter = (query: Record<string, string | undefined> | undefined): { state?: ImageStateName; vmId?: number } => {
  const names = IMAGE_STATES.map((s) => s.name);
  const state = query?.state;
  if (state !== undefined && !names.includes(state as ImageStateName)) {
    throw new DomainError('validation', `state must be one of ${names.join(', ')}.`);
  }
  const vmId = query?.vmId === undefined ? undefined : parseId(query.vmId, 'vmId');
  return { ...(state !== undefined ? { state: state as ImageStateName } : {}), ...(vmId !== undefined ? { vmId } : {}) };
};
