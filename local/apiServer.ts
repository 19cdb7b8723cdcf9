/**
 * The local HTTP front door: does what API Gateway does in AWS. It verifies the
 * bearer token (local HS256 instead of Cognito), turns each request into a real API
 * Gateway HTTP API v2 event (claims under requestContext.authorizer.jwt.claims, as
 * strings the way the JWT authorizer passes them), and calls the same handlers.
 * `POST /_local/events` stands in for EventBridge PutEvents (local only, no token); it
 * speaks enough of the AWS JSON protocol for the SDK's and the CLI's PutEvents, and
 * refuses a request over EventBridge's 256 KB entry limit as the bus does. `GET /docs`
 * is the API page (apiDocs.ts).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { routeKeyOf } from '../functions/shared/routeTable';
import type { HttpEvent } from '../functions/shared/http';
import { isCc1ApiPath, pathTrick, pathTrickMessage } from '../functions/shared/pathSafety';
import { isApiDocsPath, serveApiDocs } from './apiDocs';
import { apiGatewayRoute } from './apiGatewayRouting';
import { verifyLocalToken } from './jwt';

type HttpHandler = (event: HttpEvent, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;

export interface LocalEventEntry {
  Source?: unknown;
  DetailType?: unknown;
  Detail?: unknown;
  /** ISO text (plain JSON), or epoch seconds (the AWS JSON protocol: the SDK sends a number). */
  Time?: unknown;
  EventBusName?: unknown;
}

export interface LocalApiOptions {
  restApi: HttpHandler;
  cc1Api: HttpHandler;
  /** PutEvents entries; returns one result per entry. */
  putEvents: (entries: LocalEventEntry[]) => Promise<Array<{ EventId?: string; ErrorCode?: string; ErrorMessage?: string }>>;
  /** Extra local-only GET routes (e.g. dead letters), under /_local/. */
  localRoutes?: Record<string, () => Promise<unknown>>;
  /**
   * Extra local-only actions on an item, `<METHOD> /_local/<collection>/<item>`, keyed
   * `<METHOD> <collection>` (e.g. `DELETE stream-dead-letters/diskFiles`); the handler gets
   * the item and answers a status (204, or 404 when there is no such item).
   */
  localActions?: Record<string, (item: string) => Promise<number>>;
  port?: number;
  host?: string;
  /** Largest body accepted, bytes (API Gateway's limit is 10 MB; portals send little). */
  maxBodyBytes?: number;
  /** The functions' time limit, as Lambda's timeout (default 30 s, as deployed). */
  lambdaTimeoutMs?: number;
}

export interface LocalApi {
  url: string;
  server: Server;
  /** Stops taking connections and waits up to `drainMs` (default 0) for requests in flight. */
  close(drainMs?: number): Promise<void>;
}

const PUT_EVENTS_PATH = /^\/_local\/events\/?$/;

/** EventBridge's limit on the entries of one PutEvents request, counted as putEventsEntriesSize does. */
export const PUT_EVENTS_MAX_BYTES = 256 * 1024;

/**
 * The size of PutEvents entries as EventBridge counts it ("Calculating PutEvents event
 * entry size"): 14 bytes for a Time, the UTF-8 bytes of Source, DetailType, Detail and
 * of each Resources entry.
 */
export const putEventsEntriesSize = (entries: unknown[]): number => {
  const bytes = (v: unknown) => (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : 0);
  let size = 0;
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null) continue;
    const e = entry as LocalEventEntry & { Resources?: unknown };
    if (e.Time !== undefined && e.Time !== null) size += 14;
    size += bytes(e.Source) + bytes(e.DetailType) + bytes(e.Detail);
    if (Array.isArray(e.Resources)) for (const r of e.Resources) size += bytes(r);
  }
  return size;
};

/** API Gateway's JWT authorizer hands every claim over as a string; arrays as `[a b]`. */
const claimsAsApiGatewayPasses = (payload: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(payload).map(([k, v]) => [k, Array.isArray(v) ? `[${v.join(' ')}]` : typeof v === 'string' ? v : JSON.stringify(v)]),
  );

const lambdaContext = (requestId: string, functionName: string, timeoutMs: number): Context => {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
};

const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

/** The path of a request-target as sent (origin-form or absolute-form), without the query. */
const rawPathOf = (target: string): string => target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split('?')[0] || '/';

/** Past this many bytes a body is no longer drained: the connection is cut. */
const DRAIN_FACTOR = 16;

/**
 * Reads the body. One over the limit is read to its end and thrown away, then refused
 * with 413: answering while the client still sends makes the close reset the connection,
 * and the client then sees ECONNRESET or EPIPE instead of the 413. A body past
 * DRAIN_FACTOR times the limit is not worth reading: the connection is cut.
 */
const readBody = (req: IncomingMessage, limit: number): Promise<string | undefined> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit * DRAIN_FACTOR) {
        req.destroy();
        return;
      }
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > limit) return reject(Object.assign(new Error('body too large'), { status: 413 }));
      resolve(chunks.length ? Buffer.concat(chunks).toString('utf8') : undefined);
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(Object.assign(new Error('request aborted'), { status: 499 }));
    });
  });

export const startLocalApi = async (options: LocalApiOptions): Promise<LocalApi> => {
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomUUID();
    // Not `new URL(path, base)`: a path starting `//` would be read as a host (and a bad one throws).
    const url = new URL(`http://local${req.url?.startsWith('/') ? req.url : '/'}`);
    const method = (req.method ?? 'GET').toUpperCase();
    // Route on the path as sent, as API Gateway's rawPath: URL's pathname has resolved dot
    // segments and backslashes already (`get_list/../delete` would be `delete`).
    const path = rawPathOf(req.url ?? '/');
    const body = await readBody(req, maxBody);

    const trick = pathTrick(path);
    if (trick) {
      // A CC1 path whose function cannot be told is unknown (404); anything else is bad input (400).
      const [status, code] = isCc1ApiPath(path) ? [404, 'not_found'] : [400, 'validation'];
      return send(res, status, { error: { code, message: pathTrickMessage(trick) } });
    }

    // The API page (local only, no token): the OpenAPI in Swagger UI.
    if (isApiDocsPath(path)) return serveApiDocs(res, method, path);

    // The SDK's PutEvents (AWS JSON 1.1: `X-Amz-Target: AWSEvents.PutEvents`) posts to its endpoint's
    // path plus `/`: `--endpoint-url <url>/_local/events` gives `/_local/events/`, `<url>` gives `/`.
    const putEventsCall = method === 'POST' && (PUT_EVENTS_PATH.test(path) || (path === '/' && req.headers['x-amz-target'] === 'AWSEvents.PutEvents'));
    if (path.startsWith('/_local/') || putEventsCall) {
      if (putEventsCall) {
        let parsed: { Entries?: unknown };
        try {
          parsed = JSON.parse(body ?? '{}') as { Entries?: unknown };
        } catch {
          return send(res, 400, { error: { code: 'validation', message: 'The body is not valid JSON.' } });
        }
        if (!Array.isArray(parsed.Entries) || parsed.Entries.length === 0 || parsed.Entries.length > 10) {
          return send(res, 400, { error: { code: 'validation', message: 'Entries must be a list of 1 to 10 entries.' } });
        }
        const size = putEventsEntriesSize(parsed.Entries);
        if (size > PUT_EVENTS_MAX_BYTES) {
          // As EventBridge: the whole request is refused (400 ValidationException), no entry is taken.
          const message = `Total size of the entries in the request is over the limit (${size} > ${PUT_EVENTS_MAX_BYTES} bytes).`;
          return send(res, 400, { __type: 'ValidationException', message, error: { code: 'validation', message } }, { 'x-amzn-errortype': 'ValidationException' });
        }
        const results = await options.putEvents(parsed.Entries as LocalEventEntry[]);
        return send(res, 200, { FailedEntryCount: results.filter((r) => r.ErrorCode).length, Entries: results });
      }
      const local = method === 'GET' ? options.localRoutes?.[path.slice('/_local/'.length)] : undefined;
      if (local) return send(res, 200, await local());
      const at = path.lastIndexOf('/');
      const action = options.localActions?.[`${method} ${path.slice('/_local/'.length, at)}`];
      if (action && at > '/_local/'.length && at < path.length - 1) {
        const status = await action(decodeURIComponent(path.slice(at + 1)));
        if (status === 204) {
          res.writeHead(204).end();
          return;
        }
        return send(res, status, { error: { code: 'not_found', message: `No such item: ${method} ${path}.` } });
      }
      return send(res, 404, { error: { code: 'not_found', message: `No local route ${method} ${path}.` } });
    }

    // Route first, as API Gateway does: an unknown route is a 404 before any auth.
    const match = apiGatewayRoute(method, path);
    if (!match.route) return send(res, match.pathExists ? 405 : 404, { message: match.pathExists ? 'Method Not Allowed' : 'Not Found' });

    // The JWT authorizer: a missing or bad token never reaches a handler.
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    const claims = token ? await verifyLocalToken(token) : undefined;
    if (!claims) return send(res, 401, { message: 'Unauthorized' }, { 'www-authenticate': 'Bearer' });

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
    const routeKey = routeKeyOf(match.route);
    const now = new Date();
    const event: HttpEvent = {
      version: '2.0',
      routeKey,
      rawPath: path,
      rawQueryString: url.search.replace(/^\?/, ''),
      headers,
      ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
      ...(Object.keys(match.params).length ? { pathParameters: match.params } : {}),
      requestContext: {
        accountId: '000000000000',
        apiId: 'local',
        authorizer: { jwt: { claims: claimsAsApiGatewayPasses(claims as Record<string, unknown>), scopes: [] } },
        domainName: headers.host ?? 'localhost',
        domainPrefix: 'local',
        http: { method, path, protocol: 'HTTP/1.1', sourceIp: req.socket.remoteAddress ?? '127.0.0.1', userAgent: headers['user-agent'] ?? '' },
        requestId,
        routeKey,
        stage: '$default',
        time: now.toISOString(),
        timeEpoch: now.getTime(),
      },
      isBase64Encoded: false,
      ...(body !== undefined ? { body } : {}),
    } as HttpEvent;
    const result = await options[match.api](event, lambdaContext(requestId, match.api, options.lambdaTimeoutMs ?? 30_000));
    res.writeHead(result.statusCode ?? 200, { ...(result.headers as Record<string, string>), 'x-request-id': requestId });
    res.end(result.body ?? '');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: { status?: number }) => {
      if (res.headersSent) return res.end();
      if (error?.status === 499) return; // the client went away (or was cut off): nobody to answer
      if (error?.status === 413) return send(res, 413, { error: { code: 'validation', message: 'The body is too large.' } }, { connection: 'close' });
      console.error('local api: unexpected error', error);
      send(res, 500, { error: { code: 'internal', message: 'Internal error.' } });
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    server,
    close: (drainMs = 0) =>
      new Promise<void>((resolve) => {
        // No new connections; idle keep-alive ones close now; requests in flight get up to
        // `drainMs` to finish and answer (a cut attach would leave its saga to the reconciler).
        const force = setTimeout(() => server.closeAllConnections(), drainMs);
        // A keep-alive connection whose request just answered is idle now: close it too.
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearTimeout(force);
          clearInterval(idle);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
};
