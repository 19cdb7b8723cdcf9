/**
 * Whether an error means a dependency (DynamoDB, or the idempotency store on it) is
 * unavailable, throttling or timing out: the caller should retry later (503 with
 * Retry-After), not be told the service broke (500). Decided by the error's type as
 * the AWS SDK v3 marks it (`$fault`, `$retryable`, the service's exception names) and
 * by Node's socket error codes, following `cause` chains (Powertools'
 * IdempotencyPersistenceLayerError wraps the SDK error it met).
 */

/** DynamoDB's throttling exceptions (API reference, "Common errors" and each operation's errors). */
const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'LimitExceededException']);

/** Node's socket errors for a server that is down, unreachable or cut the connection. */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

type Marked = {
  name?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $retryable?: { throttling?: boolean };
  $metadata?: unknown;
  cause?: unknown;
  errors?: unknown[]; // AggregateError (a connection refused on every address)
};

export const isDependencyUnavailable = (error: unknown, depth = 0): boolean => {
  if (!error || typeof error !== 'object' || depth > 8) return false;
  const e = error as Marked;
  if (e.$metadata !== undefined && (e.$fault === 'server' || e.$retryable?.throttling)) return true;
  // The SDK gave up without any answer from the service (every attempt failed to connect or
  // timed out): a service's own error always carries `$fault`, a transport failure does not.
  if (e.$metadata !== undefined && e.$fault === undefined) return true;
  if (e.name && THROTTLING.has(e.name)) return true;
  if (e.code && NETWORK.has(e.code)) return true;
  // The SDK's socket and connection timeouts (NodeHttpHandler): no answer from the endpoint.
  if (e.name === 'TimeoutError' && e.code !== undefined) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isDependencyUnavailable(inner, depth + 1))) return true;
  return isDependencyUnavailable(e.cause, depth + 1);
};
