/**
 * Local tokens: HS256 JWTs signed with LOCAL_JWT_SECRET, verified by the local
 * server the way API Gateway's JWT authorizer verifies Cognito's. This file lives in
 * local/ only: nothing under infra/ or functions/ imports it, so it cannot be deployed.
 */
import { SignJWT, jwtVerify, type JWTPayload } from 'jose';

/** The documented default; set LOCAL_JWT_SECRET to use your own. Local use only. */
export const DEFAULT_LOCAL_JWT_SECRET = 'cc1-local-development-secret-change-me';
export const LOCAL_ISSUER = 'cc1-local';
export const LOCAL_AUDIENCE = 'cc1-storage-images';

export const localSecret = (): string => process.env.LOCAL_JWT_SECRET || DEFAULT_LOCAL_JWT_SECRET;

const key = (secret: string) => new TextEncoder().encode(secret);

export interface TokenOptions {
  userId: number | string;
  admin?: boolean;
  portal?: boolean;
  /** Lifetime in seconds (default 12 h); negative for an expired token in tests. */
  expiresInSeconds?: number;
  secret?: string;
  extraClaims?: Record<string, unknown>;
}

export const signLocalToken = async (options: TokenOptions): Promise<string> => {
  const groups = [...(options.admin ? ['admin'] : []), ...(options.portal ? ['portal'] : [])];
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ 'cognito:groups': groups, ...options.extraClaims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(String(options.userId))
    .setIssuer(LOCAL_ISSUER)
    .setAudience(LOCAL_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresInSeconds ?? 12 * 3600))
    .sign(key(options.secret ?? localSecret()));
};

/** The verified claims, or undefined for a missing, expired, forged or foreign token. */
export const verifyLocalToken = async (token: string, secret = localSecret()): Promise<JWTPayload | undefined> => {
  try {
    const { payload } = await jwtVerify(token, key(secret), { issuer: LOCAL_ISSUER, audience: LOCAL_AUDIENCE, algorithms: ['HS256'] });
    return payload;
  } catch {
    return undefined;
  }
};
