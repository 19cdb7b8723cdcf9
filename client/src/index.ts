/**
 * A typed client of the CC1 Storage Images REST API for portal authors: openapi-fetch
 * over the types that openapi-typescript generates from docs/openapi.yaml (schema.ts,
 * `npm run client:generate`), plus what every portal needs around it: a bearer token,
 * an Idempotency-Key on every write, retries of 503 honouring Retry-After, and
 * ETag / If-Match helpers. See client/README.md.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';
import { DEFAULT_RETRY, retryingFetch, type RetryOptions } from './retry';

export type { components, operations, paths } from './schema';
export { IDEMPOTENCY_KEY_HEADER, newIdempotencyKey, retryAfterMs, type RetryOptions } from './retry';

export type Image = components['schemas']['Image'];
export type ImagePage = components['schemas']['ImagePage'];
export type ApiError = components['schemas']['Error'];
export type ErrorCode = components['schemas']['ErrorCode'];
export type StorageImagesClient = Client<paths>;

export interface StorageImagesClientOptions {
  /** The API's root, e.g. `http://127.0.0.1:3000` (npm start) or the HTTP API's URL. */
  baseUrl: string;
  /** The caller's JWT, or a function asked on every attempt (for refreshed tokens). */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  /** Retry policy for 503s and network errors; `false` sends each call once. */
  retry?: RetryOptions | false;
  /**
   * Give every write (POST, PUT, PATCH, DELETE) that has no Idempotency-Key a fresh
   * one (default true), kept on its retries. Pass your own key (`newIdempotencyKey()`,
   * stored by the portal) to make a write safe to repeat across page loads too.
   */
  idempotencyKeys?: boolean;
  /** Headers sent on every call. */
  headers?: Record<string, string>;
  /** The fetch to use (default globalThis.fetch); each attempt is one call of it. */
  fetch?: (request: Request) => Promise<Response>;
}

export const createStorageImagesClient = (options: StorageImagesClientOptions): StorageImagesClient => {
  const baseFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  return createClient<paths>({
    baseUrl: options.baseUrl,
    headers: options.headers,
    fetch: retryingFetch({
      retry: options.retry === false ? { ...DEFAULT_RETRY, attempts: 1 } : { ...DEFAULT_RETRY, ...options.retry },
      idempotencyKeys: options.idempotencyKeys ?? true,
      token: options.token,
      fetch: baseFetch,
    }),
  });
};

/**
 * The `ETag` of an answer (an image's version, quoted), to send back as `If-Match`;
 * undefined when the answer has none.
 */
export const etagOf = (response: Response): string | undefined => response.headers.get('ETag') ?? undefined;

/**
 * The `If-Match` header for a write that must apply only to the version seen: spread it
 * into a call's `headers` (`headers: ifMatch(etag)`). No ETag, no header: the write is
 * unconditional, as without it.
 */
export const ifMatch = (etag: string | undefined): Record<string, string> => (etag === undefined ? {} : { 'If-Match': etag });

/**
 * The CC1 error code of an error answer (`{"error": {"code", "message"}}`), or
 * undefined for another shape (the gateway's 401 `{"message": "Unauthorized"}`).
 */
export const errorCode = (error: unknown): ErrorCode | undefined => {
  const inner = (error as { error?: { code?: unknown } } | null | undefined)?.error;
  return typeof inner?.code === 'string' ? (inner.code as ErrorCode) : undefined;
};
