/**
 * End-to-end harness: starts the local stack as a user would (`tsx local/main.ts`
 * in a child process, PORT=0, a fresh data folder, the simulated hypervisor), waits
 * for `listening on <url>`, and talks to it over HTTP only. Every REST reply that
 * goes through `rest()` is checked against docs/openapi.yaml (see e2eOpenapi.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { signLocalToken } from '../../local/jwt';
import { checkRestReply } from './e2eOpenapi';

export const REPO_ROOT = resolve(__dirname, '..', '..');
const TSX = join(REPO_ROOT, 'node_modules', '.bin', 'tsx');

export interface TokenFlags {
  admin?: boolean;
  portal?: boolean;
  expiresInSeconds?: number;
  secret?: string;
  extraClaims?: Record<string, unknown>;
}

export interface VmEventDetail {
  vmId: number;
  userId: number;
  state: 'running' | 'stopped';
  reason?: string;
  /** ISO time the host saw the change (orders redeliveries); default now. */
  time?: string;
  hostId?: string;
  domain?: string;
}

export interface Reply<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent as is (for malformed JSON). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface E2eStack {
  url: string;
  dataDir: string;
  /** The child's pid (tsx; its own process group): fault tests find the JVM below it. */
  pid: number;
  /** Everything the child printed (stdout and stderr), for failure messages. */
  output(): string;
  token(userId: number, flags?: TokenFlags): Promise<string>;
  putVmEvent(detail: VmEventDetail): Promise<void>;
  /** Any HTTP call; no contract check. */
  call<T = any>(method: string, path: string, options?: CallOptions): Promise<Reply<T>>;
  /** A REST API call whose reply is checked against docs/openapi.yaml. */
  rest<T = any>(method: string, path: string, options?: CallOptions): Promise<Reply<T>>;
  /** A CC1 API call: POST /<area>/storage_image/<fn>/ with a JSON body. */
  cc1<T = any>(area: 'user' | 'admin_cm', fn: string, token: string, body: unknown): Promise<Reply<T>>;
  stop(): Promise<void>;
}

export interface E2eStackOptions {
  /** Reuse a data folder (restarts); a fresh temp folder otherwise. */
  dataDir?: string;
  /** Extra environment for the child (e.g. DEFAULT_QUOTA_MB). */
  env?: Record<string, string>;
  /** Keep the data folder on stop (for a restart on it). */
  keepData?: boolean;
  startTimeoutMs?: number;
}

export const HOST_ID = 'i-0123456789abcdef0';

export const startE2eStack = async (options: E2eStackOptions = {}): Promise<E2eStack> => {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'cc1-e2e-'));
  const child: ChildProcess = spawn(TSX, ['local/main.ts'], {
    cwd: REPO_ROOT,
    detached: true, // its own process group, so stop() reaches tsx's node child too
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: '0',
      CC1_DATA_DIR: dataDir,
      CC1_HYPERVISOR: 'simulated',
      NODE_NO_WARNINGS: '1',
      ...options.env,
    },
  });
  let output = '';
  let exited = false;
  const exitPromise = new Promise<void>((resolveExit) => child.once('exit', () => ((exited = true), resolveExit())));

  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`local stack did not start in time:\n${output}`)), options.startTimeoutMs ?? 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`local stack exited (${code}) before listening:\n${output}`));
    });
  });

  const call = async <T>(method: string, path: string, o: CallOptions = {}): Promise<Reply<T>> => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let body: string | undefined = o.rawBody;
    if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(url + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed as T, text, headers: res.headers };
  };

  const stop = async () => {
    if (!exited) {
      try {
        process.kill(child.pid!, 'SIGTERM'); // tsx relays it; main.ts closes the stack
      } catch {
        /* gone */
      }
      const killer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 10_000);
      await exitPromise;
      clearTimeout(killer);
    }
    // Whatever is left in the group (tsx's node child) goes too.
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    if (!options.keepData && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };

  return {
    url,
    dataDir,
    pid: child.pid!,
    output: () => output,
    token: (userId, flags = {}) => signLocalToken({ userId, ...flags }),
    putVmEvent: async (detail) => {
      const full = {
        hostId: HOST_ID,
        domain: `vm-${detail.vmId}-${detail.userId}`,
        time: new Date().toISOString(),
        ...detail,
      };
      const reply = await call<{ FailedEntryCount: number }>('POST', '/_local/events', {
        body: { Entries: [{ Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: JSON.stringify(full) }] },
      });
      if (reply.status !== 200 || reply.body.FailedEntryCount !== 0) throw new Error(`putVmEvent failed: ${reply.status} ${reply.text}`);
    },
    call,
    rest: async <T>(method: string, path: string, o?: CallOptions): Promise<Reply<T>> => {
      const reply = await call<T>(method, path, o);
      checkRestReply(method, path, reply.status, reply.body);
      return reply;
    },
    cc1: (area, fn, token, body) => call('POST', `/${area}/storage_image/${fn}/`, { token, body }),
    stop,
  };
};

/** Polls `probe` until `done` holds (bounded): for what is asynchronous by design. */
export const waitFor = async <T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000, everyMs = 50): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
};
