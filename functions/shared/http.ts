/**
 * The middy stack shared by both HTTP APIs: tracing, correlation-id logging and
 * metrics (observability.ts), header normalizer, JSON body parser, idempotency on
 * writes (Idempotency-Key header), routing (@middy/http-router), and errors turned
 * into replies last. Route code stays free of plumbing.
 */
import { createHash } from 'node:crypto';
import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import httpRouterHandler from '@middy/http-router';
import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import type { Logger } from '@aws-lambda-powertools/logger';
import { correlationPaths } from '@aws-lambda-powertools/logger/correlationId';
import type { APIGatewayProxyEventV2, APIGatewayProxyEventV2WithJWTAuthorizer, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { DomainError, type ErrorCode } from '../../domain/errors';
import { withCorrelationId } from './correlation';
import type { ServiceDeps } from '../../application/storageImages';
import { container } from './container';
import { callerFromClaims, type Caller } from './identity';
import { lazy } from './lazy';
import { observability } from './observability';
import { isDependencyUnavailable } from './unavailable';
import type { RouteDef } from './routeTable';

export type HttpEvent = Omit<APIGatewayProxyEventV2WithJWTAuthorizer, 'body'> & { body?: unknown; rawBody?: string };
export type HttpResult = APIGatewayProxyStructuredResultV2;

export const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

export const errorBody = (code: string, message: string) => ({ error: { code, message } });

/** Seconds a client is asked to wait before retrying a 503 (SPEC 4.1: every 503 carries Retry-After). */
export const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = { hypervisor_unavailable: 5, service_unavailable: 2, timeout: 2 };

const unavailable = (code: ErrorCode, message: string): HttpResult =>
  json(503, errorBody(code, message), { 'retry-after': String(RETRY_AFTER_SECONDS[code] ?? 2) });

/** The one place a thrown error becomes an HTTP status and a `{error: {code, message}}` body. */
export const errorReply = (error: unknown, logger: Logger): HttpResult => {
  if (error instanceof DomainError) {
    return error.httpStatus === 503 ? unavailable(error.code, error.message) : json(error.httpStatus, errorBody(error.code, error.message));
  }
  const name = (error as { name?: string } | undefined)?.name;
  if (name === 'IdempotencyAlreadyInProgressError') {
    return json(409, errorBody('idempotency_in_progress' satisfies ErrorCode, 'A request with this Idempotency-Key is still running; retry shortly.'));
  }
  if (name === 'IdempotencyValidationError') {
    return json(422, errorBody('idempotency_key_reused' satisfies ErrorCode, 'This Idempotency-Key was used with a different request body.'));
  }
  if (name === 'TimeoutError') {
    // The function ran out of time; the work may still finish. Only a request that waited on a
    // host blames the host: a read that times out is overload, and must not pass for a host's fault.
    const code: ErrorCode = error instanceof RequestTimedOut && error.duringHostWork ? 'hypervisor_unavailable' : 'timeout';
    const why = code === 'timeout' ? 'the service is overloaded' : 'the hypervisor host is slow or unreachable';
    return unavailable(code, `The request did not finish in time (${why}); retry with the same Idempotency-Key.`);
  }
  if (isDependencyUnavailable(error)) {
    logger.warn('dependency unavailable', { error: error as Error });
    return unavailable('service_unavailable', 'The database is unavailable or throttled; retry with the same Idempotency-Key.');
  }
  // middy's own refusals (bad JSON, bad content type) are the client's fault: 400.
  const status = (error as { statusCode?: number; expose?: boolean } | undefined)?.statusCode;
  if (status && status >= 400 && status < 500) {
    const malformed = /malformed/i.test((error as Error).message ?? '');
    const message = malformed ? 'The body is not valid JSON.' : 'The body must be JSON (Content-Type: application/json).';
    return json(400, errorBody('validation', message));
  }
  logger.error('unexpected error', { error: error as Error });
  return json(500, errorBody('internal', 'Internal error; the request id is in the x-request-id header.'));
};

/** middy's timeout, told whether the request was doing hypervisor work (HttpStackOptions.hypervisorWork). */
export class RequestTimedOut extends Error {
  constructor(readonly duringHostWork: boolean) {
    super('The function ran out of time.');
    this.name = 'TimeoutError';
  }
}

export interface HttpStackOptions {
  logger: Logger;
  /** How a thrown error is answered (default: errorReply, the REST API's form). */
  replyToError?: (error: unknown, logger: Logger) => HttpResult;
  /** Resolved lazily so a cold start does not build clients for reads that do not need them. */
  idempotencyStore?: () => BasePersistenceLayer;
  /** Whether a request runs virsh on a hypervisor host (its timeout then answers hypervisor_unavailable, else timeout). */
  hypervisorWork?: (event: HttpEvent) => boolean;
}

/**
 * The idempotency key of a write: the caller, the method and path, and the
 * Idempotency-Key header. Reads and requests without the header have none
 * (the JMESPath `&&` yields null, and Powertools lets the request through).
 */
const IDEMPOTENCY_KEY_PATH =
  'headers."idempotency-key" && [requestContext.authorizer.jwt.claims.sub, requestContext.http.method, rawPath, headers."idempotency-key"]';

/**
 * Any body is JSON whatever its Content-Type says (curl sends form encoding by default;
 * portals often omit it): the parser's own `disableContentTypeCheck`. It refuses a
 * missing body, so requests without one (reads, DELETE) skip it.
 */
// The option is in the middleware (6.4.5) but missing from its type declarations.
const jsonBodyParser = httpJsonBodyParser({ disableContentTypeCheck: true } as Parameters<typeof httpJsonBodyParser>[0]);
const jsonBodyIfAny = {
  before: async (request: { event: HttpEvent }) => {
    if (request.event.body === undefined || request.event.body === null || request.event.body === '') {
      delete request.event.body;
      return;
    }
    return jsonBodyParser.before!(request as never);
  },
};

/** Deepest JSON nesting accepted; no body of this API needs more than a few levels. */
export const MAX_BODY_DEPTH = 32;

/** The nesting depth of a parsed JSON value, without recursion (a hostile body can be 100,000 deep). */
export const jsonDepth = (value: unknown, limit = MAX_BODY_DEPTH + 1): number => {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest >= limit) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
};

/**
 * Refuses absurdly nested bodies (400) before anything walks them recursively: the
 * idempotency layer hashes the body with a recursive sort, which overflowed the stack
 * (a 500) on `[[[[...]]]]` sent with an Idempotency-Key.
 */
const bodyDepthLimit = {
  before: async (request: { event: HttpEvent }) => {
    if (jsonDepth(request.event.body) > MAX_BODY_DEPTH) {
      throw new DomainError('validation', `The body is nested deeper than ${MAX_BODY_DEPTH} levels.`);
    }
  },
};

/**
 * An Idempotency-Key is 1..255 printable ASCII characters (SPEC 3), not blank. Anything
 * else is refused before the idempotency layer sees it: an empty key was hashed as the
 * empty string, so every caller's empty-key create shared one record (issue 19).
 */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x20-\x7E]{1,255}$/;

const idempotencyKeyCheck = {
  before: async (request: { event: HttpEvent }) => {
    const headers = request.event.headers ?? {};
    if (!Object.hasOwn(headers, 'idempotency-key')) return;
    const key = headers['idempotency-key'] ?? '';
    if (!IDEMPOTENCY_KEY_PATTERN.test(key) || key.trim() === '') {
      throw new DomainError('validation', 'Idempotency-Key must be 1 to 255 printable characters, not blank.');
    }
  },
};

/** A read is never replayed from the idempotency store: it drops the header. */
const readsSkipIdempotency = {
  before: async (request: { event: HttpEvent }) => {
    const headers = request.event.headers;
    if (request.event.requestContext.http.method === 'GET' && headers) delete headers['idempotency-key'];
  },
};

export const httpStack = (route: (event: HttpEvent, context: Context) => Promise<HttpResult>, options: HttpStackOptions) => {
  const { logger } = options;
  const stack = middy<HttpEvent, HttpResult>()
    // First in, so its onError runs last: after idempotency dropped its record, so
    // only successful replies are ever replayed for an Idempotency-Key.
    .use({
      onError: async (request) => {
        const timedOut = (request.error as { name?: string } | null)?.name === 'TimeoutError';
        const error = timedOut ? new RequestTimedOut(options.hypervisorWork?.(request.event) ?? false) : request.error;
        request.response = (options.replyToError ?? errorReply)(error, logger);
      },
    })
    .use(observability(logger, correlationPaths.API_GATEWAY_HTTP))
    .use(httpHeaderNormalizer())
    .use(jsonBodyIfAny)
    .use(bodyDepthLimit);
  if (options.idempotencyStore) {
    const persistenceStore = lazyPersistence(options.idempotencyStore);
    stack.use(readsSkipIdempotency).use(idempotencyKeyCheck).use(
      refusalKeepsTheRecord(
        makeHandlerIdempotent({
          persistenceStore,
          config: new IdempotencyConfig({
            eventKeyJmesPath: IDEMPOTENCY_KEY_PATH,
            payloadValidationJmesPath: 'body',
            throwOnNoIdempotencyKey: false,
            expiresAfterSeconds: 24 * 3600,
          }),
        }),
        logger,
      ),
    );
  }
  // The API Gateway request id follows the request into every event it appends (correlation.ts).
  return stack.handler((event, context) => withCorrelationId(event.requestContext.requestId, () => route(event, context)));
};

type Idempotency = ReturnType<typeof makeHandlerIdempotent>;

/**
 * Powertools issue #5675 (fixed upstream in PR #5676, in no release up to 2.35.0): when
 * its own `before` refuses a request (a duplicate still in progress: 409; the key reused
 * with another body: 422), its `onError` then deletes the idempotency record of the
 * ORIGINAL request, so the original's retry ran a second time. A request refused in
 * `before` never saved a record of its own: its errors skip that `onError`.
 */
const refusalKeepsTheRecord = (idempotency: Idempotency, logger: Logger): Idempotency => {
  const refused = new WeakSet<object>();
  return {
    before: async (request) => {
      try {
        return await idempotency.before!(request);
      } catch (error) {
        refused.add(request);
        throw error;
      }
    },
    after: idempotency.after,
    onError: async (request) => {
      if (refused.has(request)) return;
      // A request that ran out of time may still finish its work: its record stays in
      // progress until it expires, so a retry cannot run the work a second time.
      if ((request.error as { name?: string } | null)?.name === 'TimeoutError') return;
      try {
        await idempotency.onError!(request);
      } catch (error) {
        // The record could not be deleted (the database is down): the request still gets
        // its own answer (a 503 when that is the cause); the record expires by itself.
        logger.warn('idempotency record not released', { error: error as Error });
      }
    },
  } as Idempotency;
};

/**
 * The idempotency middleware takes its store when the handler module loads, before the
 * container exists (the local stack installs its own first): this stand-in builds the
 * real one on first use.
 */
const lazyPersistence = (make: () => BasePersistenceLayer): BasePersistenceLayer => {
  const store = lazy(make);
  return new Proxy({} as BasePersistenceLayer, {
    get(_target, property) {
      const value = (store() as unknown as Record<PropertyKey, unknown>)[property];
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(store()) : value;
    },
  });
};

/** Who calls (from the JWT claims API Gateway's authorizer verified) and what the service runs on. */
export interface RequestScope {
  caller: Caller;
  deps: ServiceDeps;
  /**
   * The write's Idempotency-Key scoped to the caller, the method and the route (the same
   * parts as the idempotency record's key), hashed: what a create binds its image to in
   * its own transaction. Absent for reads and requests without the header.
   */
  writeKey?: string;
}

const writeKeyOf = (event: HttpEvent): string | undefined => {
  const key = event.headers?.['idempotency-key'];
  if (key === undefined || event.requestContext.http.method === 'GET') return undefined;
  const parts = [event.requestContext.authorizer?.jwt?.claims?.sub, event.requestContext.http.method, event.rawPath, key];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
};

const scopeOf = (event: HttpEvent): RequestScope => {
  const { config, deps } = container();
  const writeKey = writeKeyOf(event);
  return { caller: callerFromClaims(event.requestContext.authorizer?.jwt?.claims, config.userIdClaim), deps, ...(writeKey ? { writeKey } : {}) };
};

export interface HttpRoute extends RouteDef {
  handler: (event: HttpEvent, scope: RequestScope) => Promise<HttpResult>;
}

/**
 * Routes by method and path with @middy/http-router (path parameters from the
 * `{name}` templates; API Gateway's own pathParameters win), and hands the route its
 * caller and deps. An unmatched request is `not_found` (before any token is read).
 * The router's types speak API Gateway's raw event; ours has the body parsed.
 */
export const httpRouter = (routes: readonly HttpRoute[], notFound: (method: string, path: string) => string) => {
  const router = httpRouterHandler<APIGatewayProxyEventV2, HttpResult>({
    routes: routes.map((r) => ({
      method: r.method,
      path: r.path,
      handler: (raw: APIGatewayProxyEventV2) => {
        const event = raw as unknown as HttpEvent;
        return r.handler(event, scopeOf(event));
      },
    })),
    notFoundResponse: ({ method, path }) => {
      throw new DomainError('not_found', notFound(method, path));
    },
  });
  return (event: HttpEvent, context: Context): Promise<HttpResult> => router(event as unknown as APIGatewayProxyEventV2, context);
};
