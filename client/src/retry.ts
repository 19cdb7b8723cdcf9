/**
 * The fetch that openapi-fetch calls: one call of the client is one call of this
 * function, so a key given here is the same on every attempt of that call.
 */

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';

export interface RetryOptions {
  /** Attempts in all, the first one included (default 4; 1 turns retries off). */
  attempts?: number;
  /**
   * Time budget of one call from its first attempt (default 30 000 ms): a wait that
   * would end past it is not started, and the last answer (or error) is returned.
   */
  maxTotalMs?: number;
  /**
   * Wait before the first retry after a network error, doubled on each next one; also
   * the wait for a 503 without a usable Retry-After (default 500 ms).
   */
  baseDelayMs?: number;
}

export interface RetryingFetchOptions {
  retry: Required<RetryOptions>;
  /** Give a write without an Idempotency-Key a fresh one (crypto.randomUUID). */
  idempotencyKeys: boolean;
  /** The bearer token, read on every attempt (so a refreshed one is used). */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  fetch: (request: Request) => Promise<Response>;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 4, maxTotalMs: 30_000, baseDelayMs: 500 };

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

export const newIdempotencyKey = (): string => globalThis.crypto.randomUUID();

/**
 * Retry-After as milliseconds: delta-seconds (what this service sends) or an HTTP
 * date (RFC 9110 allows both); undefined when absent or unreadable.
 */
export const retryAfterMs = (value: string | null, now = Date.now()): number | undefined => {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // HTTP dates end in GMT (IMF-fixdate, RFC 850); Date.parse alone takes "-1" for a year.
  const date = /GMT$/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
};

const sleep = (ms: number, signal: AbortSignal | null): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => (clearTimeout(timer), reject(signal!.reason));
    const timer = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export const retryingFetch =
  (options: RetryingFetchOptions) =>
  async (request: Request): Promise<Response> => {
    const headers = new Headers(request.headers);
    const write = !READS.has(request.method.toUpperCase());
    if (write && options.idempotencyKeys && !headers.has(IDEMPOTENCY_KEY_HEADER)) headers.set(IDEMPOTENCY_KEY_HEADER, newIdempotencyKey());
    // A write is retried only with a key: without one, a retry of a write that was done
    // but whose answer was lost (or a 503 `timeout` after the commit) would do it twice.
    const retryable = !write || headers.has(IDEMPOTENCY_KEY_HEADER);
    const template = new Request(request, { headers });
    const { attempts, maxTotalMs, baseDelayMs } = options.retry;
    const started = Date.now();
    const fits = (waitMs: number) => Date.now() + waitMs - started <= maxTotalMs;

    for (let attempt = 1; ; attempt++) {
      const sent = template.clone();
      const token = typeof options.token === 'function' ? await options.token() : options.token;
      if (token && !sent.headers.has('Authorization')) sent.headers.set('Authorization', `Bearer ${token}`);
      const last = !retryable || attempt >= attempts;
      let response: Response;
      try {
        response = await options.fetch(sent);
      } catch (error) {
        const wait = baseDelayMs * 2 ** (attempt - 1);
        // An abort is the caller's decision, not a network error.
        if (last || template.signal.aborted || (error as Error)?.name === 'AbortError' || !fits(wait)) throw error;
        await sleep(wait, template.signal);
        continue;
      }
      // Only 503 is the service's "try again later"; a 4xx is an answer, never retried.
      if (response.status !== 503 || last) return response;
      const wait = retryAfterMs(response.headers.get('Retry-After')) ?? baseDelayMs;
      if (!fits(wait)) return response;
      await response.body?.cancel().catch(() => undefined);
      await sleep(wait, template.signal);
    }
  };
