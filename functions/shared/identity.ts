/**
 * Who is calling, from the JWT claims API Gateway's authorizer verified. The user id
 * claim is configurable (pools whose `sub` is not the CC1 user id); groups come from
 * `cognito:groups` or `groups`.
 */
import { DomainError } from '../../domain/errors';
import { ID_PATTERN } from '../../domain/ids';
import type { Actor } from '../../domain/storageImage';

export interface Caller {
  userId: number;
  isAdmin: boolean;
  isPortal: boolean;
}

type Claims = Record<string, unknown>;

/**
 * API Gateway HTTP APIs hand array claims over as strings such as `[admin portal]`
 * or `[admin, portal]`; tokens made locally may carry real arrays or JSON.
 */
export const parseGroups = (value: unknown): string[] => {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string') return [];
  const text = value.trim();
  if (text.startsWith('[') && text.endsWith(']')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (Array.isArray(parsed)) return parsed.map(String);
    } catch {
      // not JSON: `[a b]` or `[a, b]`
    }
    return text.slice(1, -1).split(/[\s,]+/).filter(Boolean);
  }
  return text.split(/[\s,]+/).filter(Boolean);
};

const USER_ID = ID_PATTERN;

export const callerFromClaims = (claims: Claims | undefined, userIdClaim = 'sub'): Caller => {
  if (!claims) throw new DomainError('unauthorized', 'A bearer token is required.');
  const raw = claims[userIdClaim];
  const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '';
  if (!USER_ID.test(text)) {
    throw new DomainError('user_permission', `The token's ${userIdClaim} claim is not a CC1 user id.`);
  }
  const groups = new Set([...parseGroups(claims['cognito:groups']), ...parseGroups(claims['groups'])]);
  return { userId: Number(text), isAdmin: groups.has('admin'), isPortal: groups.has('portal') };
};

/** On the user routes, an admin acts as themselves (admin powers live under /admin). */
export const userActorOf = (caller: Caller): Actor => ({ kind: 'user', userId: caller.userId });

export const requireAdmin = (caller: Caller): Actor => {
  if (!caller.isAdmin) throw new DomainError('admin_required', 'This route is for administrators.');
  return { kind: 'admin', userId: caller.userId };
};
