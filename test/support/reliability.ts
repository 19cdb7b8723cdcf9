/**
 * Test support for the reliability suites (test/int/reliability-*.int.test.ts):
 * a keep-alive raw HTTP client (paths are sent byte for byte, so `../`, `%2e%2e` and
 * `%2f` reach the server unnormalised), local tokens for every kind of caller, the
 * local EventBridge entry, a recorder of every event append, and the end-of-run
 * invariants (contiguous versions, one device per image, read model = the log).
 */
import '../../local/localDefaults';
import { Agent, request } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import type { StoredEvent } from '../../application/storePorts';
import { toImageView } from '../../application/views';
import { streamIdOf, type StorageImageState } from '../../domain/storageImage';
import { signLocalToken } from '../../local/jwt';
import type { LocalStack } from '../../local/stack';

export interface HttpReply {
  status: number;
  text: string;
  json: unknown;
}

export interface RawRequest {
  method: string;
  /** Sent as is: the caller percent-encodes what HTTP does not allow. */
  path: string;
  token?: string;
  /** A string is sent as is (malformed JSON included); anything else is JSON.stringify'd. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** A keep-alive client to one local stack. */
export class RawClient {
  private readonly agent: Agent;

  constructor(
    readonly baseUrl: string,
    maxSockets = 16,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  send(r: RawRequest): Promise<HttpReply> {
    const url = new URL(this.baseUrl);
    const body = r.body === undefined ? undefined : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    const headers: Record<string, string> = { ...(r.headers ?? {}) };
    if (r.token !== undefined) headers.authorization = `Bearer ${r.token}`;
    if (body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, method: r.method, path: r.path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Every kind of caller the API knows, as local tokens. */
export interface Tokens {
  owner: string;
  other: string;
  portal: string;
  admin: string;
  expired: string;
  wrongSignature: string;
}

export const makeTokens = async (ids: { owner: number; other: number; portal: number; admin: number }): Promise<Tokens> => ({
  owner: await signLocalToken({ userId: ids.owner }),
  other: await signLocalToken({ userId: ids.other }),
  portal: await signLocalToken({ userId: ids.portal, portal: true }),
  admin: await signLocalToken({ userId: ids.admin, admin: true }),
  expired: await signLocalToken({ userId: ids.owner, expiresInSeconds: -60 }),
  wrongSignature: await signLocalToken({ userId: ids.owner, secret: 'not-the-local-secret-at-all-0123456789' }),
});

export const HOST_ID = 'mi-0123456789abcdef0';

export interface VmChange {
  vmId: unknown;
  userId: unknown;
  domain?: unknown;
  hostId?: unknown;
  state: unknown;
  reason?: unknown;
  time?: unknown;
}

/** A well-formed VM State Change detail. */
export const vmDetail = (vmId: number, userId: number, state: 'running' | 'stopped', extra: Record<string, unknown> = {}): VmChange => ({
  vmId,
  userId,
  domain: `vm-${vmId}-${userId}`,
  hostId: HOST_ID,
  state,
  time: new Date().toISOString(),
  ...extra,
});

export const putVmEvents = async (client: RawClient, details: unknown[], entry: Record<string, unknown> = {}): Promise<HttpReply> =>
  client.send({
    method: 'POST',
    path: '/_local/events',
    body: {
      Entries: details.map((d) => ({
        Source: 'cc1.hypervisor',
        DetailType: 'VM State Change',
        Detail: typeof d === 'string' ? d : JSON.stringify(d),
        ...entry,
      })),
    },
  });

/** Records every event committed through the stack's event store (the one all handlers use). */
export interface AppendRecorder {
  appends: StoredEvent[];
  restore(): void;
}

export const recordAppends = (stack: LocalStack): AppendRecorder => {
  const store = stack.container.deps.events;
  const original = store.commit.bind(store);
  const appends: StoredEvent[] = [];
  // One command step may commit several events (a boot attach of several images): record each.
  store.commit = async (...args: Parameters<typeof original>) => {
    const stored = await original(...args);
    appends.push(...stored);
    return stored;
  };
  return {
    appends,
    restore: () => {
      store.commit = original;
    },
  };
};

/** Every event in the table, grouped by stream, in version order. */
export const allStreams = async (stack: LocalStack): Promise<Map<string, StoredEvent[]>> => {
  const streams = new Map<string, StoredEvent[]>();
  for await (const page of stack.container.deps.events.scanAll({ pageSize: 1000 })) {
    for (const e of page) {
      const list = streams.get(e.streamId) ?? [];
      list.push(e);
      streams.set(e.streamId, list);
    }
  }
  for (const list of streams.values()) list.sort((a, b) => a.version - b.version);
  return streams;
};

export const countEvents = async (stack: LocalStack): Promise<number> => {
  let n = 0;
  for await (const page of stack.container.deps.events.scanAll({ pageSize: 1000 })) n += page.length;
  return n;
};

/** Versions 1..n with no gap and no repeat, in every stream. Returns the problems. */
export const contiguityProblems = (streams: Map<string, StoredEvent[]>): string[] => {
  const problems: string[] = [];
  for (const [streamId, events] of streams) {
    events.forEach((e, i) => {
      if (e.version !== i + 1) problems.push(`${streamId}: event #${i + 1} has version ${e.version}`);
    });
  }
  return problems;
};

/**
 * The read model equals the log: every row equals toImageView of its stream's head,
 * and every stream has its row. Returns the problems and the rows compared.
 */
export const readModelProblems = async (stack: LocalStack, streams: Map<string, StoredEvent[]>): Promise<{ problems: string[]; rows: number }> => {
  const { readModel } = stack.container.deps;
  const rows = new Map<number, unknown>();
  let nextToken: string | undefined;
  do {
    const page = await readModel.listAll({ limit: 1000, includeRevoked: true, ...(nextToken ? { nextToken } : {}) });
    for (const item of page.items) rows.set(item.id, item);
    nextToken = page.nextToken;
  } while (nextToken);
  const problems: string[] = [];
  for (const [streamId, events] of streams) {
    const head = events[events.length - 1]!;
    const expected = toImageView(head.stateAfter as StorageImageState, head.version);
    const id = Number(streamId.replace(/^image-/, ''));
    const row = rows.get(id);
    if (JSON.stringify(row) !== JSON.stringify(expected)) {
      problems.push(`${streamId}: read model ${JSON.stringify(row)} != log ${JSON.stringify(expected)}`);
    }
    rows.delete(id);
  }
  for (const id of rows.keys()) problems.push(`read model row ${id} has no stream`);
  return { problems, rows: streams.size };
};

/**
 * No device of a VM held by two images, and the VM directory's claims agree with the
 * images' attachments (every attached image holds its claim, by its attach id; no claim
 * without one).
 */
export const deviceProblems = async (stack: LocalStack, streams: Map<string, StoredEvent[]>, vmIds: number[]): Promise<string[]> => {
  const problems: string[] = [];
  const held = new Map<string, number>();
  const attachIds = new Map<string, string>();
  for (const [streamId, events] of streams) {
    const state = events[events.length - 1]!.stateAfter as StorageImageState;
    if (state.status !== 'ok' || !state.attachment) continue;
    const key = `${state.attachment.vmId}/${state.attachment.diskDev}`;
    const other = held.get(key);
    if (other !== undefined) problems.push(`${key} held by image ${other} and ${streamId}`);
    held.set(key, state.image.imageId);
    attachIds.set(key, state.attachment.attachId);
  }
  for (const vmId of vmIds) {
    const vm = await stack.container.deps.vms.get(vmId);
    for (const [dev, claim] of Object.entries(vm?.devices ?? {})) {
      const holder = held.get(`${vmId}/${dev}`);
      if (holder !== claim.imageId) problems.push(`VM ${vmId} claim ${dev} -> image ${claim.imageId}, but the images say ${holder ?? 'nobody'}`);
      else if (attachIds.get(`${vmId}/${dev}`) !== claim.attachId) problems.push(`VM ${vmId} claim ${dev} held by attach ${claim.attachId}, the image records ${attachIds.get(`${vmId}/${dev}`)}`);
      held.delete(`${vmId}/${dev}`);
    }
  }
  for (const [key, imageId] of held) if (vmIds.includes(Number(key.split('/')[0]))) problems.push(`image ${imageId} on ${key} without a claim`);
  return problems;
};

/** Canary files `/tmp/pwned-<tag>*` that hostile input would create if it reached a shell. */
export const canaries = (tag: string): string[] => readdirSync('/tmp').filter((f) => f.startsWith(`pwned-${tag}`));
export const canaryExists = (path: string): boolean => existsSync(path);

export const historyOf = async (stack: LocalStack, imageId: number): Promise<StoredEvent[]> => (await stack.container.deps.events.readStream(streamIdOf(imageId))).events;

export const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
