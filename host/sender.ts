/**
 * cc1-sender: puts the VM state records spooled by the qemu hook (host/qemu-hook) to
 * EventBridge (SPEC 4.3). See docs/host.md.
 *
 *   tsx host/sender.ts --once | --watch [--interval 2000] [--config /etc/cc1/host.env]
 *        [--spool DIR] [--bus NAME] [--region R] [--endpoint URL] [--local URL]
 *
 * - oldest first (by the record's `time`, then its file name), at most one record per
 *   VM in flight: a VM's later record is sent only after its earlier one was accepted;
 * - batches of up to 10 entries; throttling, network errors and failed entries are
 *   retried with exponential backoff and full jitter, resending only what failed;
 * - a record file is removed only once EventBridge accepted it (at-least-once);
 * - a record that can never be sent (bad JSON, a field the service would reject, an
 *   entry EventBridge calls malformed) moves to `failed/` with a `.reason` file.
 *
 * Bundle for a host without npm:
 *   npx esbuild host/sender.ts --bundle --platform=node --target=node20 --outfile=dist/cc1-sender.js
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseVmEvent, VM_EVENT_DETAIL_TYPE, VM_EVENT_SOURCE } from '../functions/vmEvents/vmStateEvent';

// ---------------------------------------------------------------------------------
// Transport

export interface EventEntry {
  Source: string;
  DetailType: string;
  /** The detail as a JSON string. */
  Detail: string;
  Time: Date;
  EventBusName: string;
}

/** One result per entry, in order: accepted, or an error code. */
export type EntryResult = { ok: true; eventId?: string } | { ok: false; errorCode: string; errorMessage?: string };

export interface EventTransport {
  /** Throws when the whole call failed (network, throttling, auth). */
  put(entries: EventEntry[]): Promise<EntryResult[]>;
}

/** EventBridge PutEvents through the AWS SDK (credentials from the host's role). */
export class SdkEventTransport implements EventTransport {
  constructor(private readonly client: EventBridgeClient) {}

  static create(options: { region?: string; endpoint?: string } = {}): SdkEventTransport {
    // maxAttempts 1: the sender owns the retries (it must also retry failed entries).
    return new SdkEventTransport(
      new EventBridgeClient({
        maxAttempts: 1,
        ...(options.region ? { region: options.region } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      }),
    );
  }

  async put(entries: EventEntry[]): Promise<EntryResult[]> {
    const out = await this.client.send(new PutEventsCommand({ Entries: entries as PutEventsRequestEntry[] }));
    return entries.map((_, i) => {
      const r = out.Entries?.[i];
      if (!r) return { ok: false, errorCode: 'MissingResult', errorMessage: 'PutEvents returned no result for this entry' };
      if (r.ErrorCode) return { ok: false, errorCode: r.ErrorCode, ...(r.ErrorMessage ? { errorMessage: r.ErrorMessage } : {}) };
      return { ok: true, ...(r.EventId ? { eventId: r.EventId } : {}) };
    });
  }
}

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 200)}`);
    this.name = 'HttpStatusError';
  }
}

/** The local stack's `POST <url>/_local/events` (PutEvents-shaped plain JSON; SPEC 4.5). */
export class LocalEventTransport implements EventTransport {
  constructor(private readonly baseUrl: string) {}

  async put(entries: EventEntry[]): Promise<EntryResult[]> {
    const body = { Entries: entries.map((e) => ({ ...e, Time: e.Time.toISOString() })) };
    const res = await fetch(`${this.baseUrl.replace(/\/+$/, '')}/_local/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new HttpStatusError(res.status, text);
    const parsed = JSON.parse(text) as { Entries?: Array<{ EventId?: string; ErrorCode?: string; ErrorMessage?: string }> };
    return entries.map((_, i) => {
      const r = parsed.Entries?.[i];
      if (!r) return { ok: false, errorCode: 'MissingResult' };
      if (r.ErrorCode) return { ok: false, errorCode: r.ErrorCode, ...(r.ErrorMessage ? { errorMessage: r.ErrorMessage } : {}) };
      return { ok: true, ...(r.EventId ? { eventId: r.EventId } : {}) };
    });
  }
}

/** Entry error codes that resending cannot fix: the record goes to failed/. */
const PERMANENT_ENTRY_ERRORS = new Set(['MalformedDetail', 'InvalidArgument', 'ValidationException']);

/** Whole-call errors that are worth retrying at once (others wait for the next poll). */
export const isRetryableError = (error: unknown): boolean => {
  const e = error as { name?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number }; cause?: unknown };
  if (!e || typeof e !== 'object') return true;
  if (e.$retryable) return true;
  const name = e.name ?? '';
  if (/Throttl|TooManyRequests|RequestLimitExceeded|InternalFailure|InternalError|ServiceUnavailable|Timeout|Abort/i.test(name)) return true;
  if (error instanceof HttpStatusError) return error.status === 429 || error.status >= 500;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number') return status === 429 || status >= 500;
  // Network failures: Node socket errors, fetch's TypeError('fetch failed').
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code ?? '';
  if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR)/.test(code)) return true;
  return error instanceof TypeError || name === 'NetworkingError';
};

// ---------------------------------------------------------------------------------
// The spool

export interface SpoolRecord {
  file: string; // file name in the spool folder
  vmId: number;
  timeMs: number;
  entry: EventEntry;
}

const RECORD_FILE = /^[A-Za-z0-9._-]+\.json$/;

/** Reads and validates one record; throws with the reason when it can never be sent. */
export const parseRecord = (text: string, busName: string): Omit<SpoolRecord, 'file'> => {
  let detail: unknown;
  try {
    detail = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) throw new Error('not a JSON object');
  const d = detail as Record<string, unknown>;
  if (typeof d.time !== 'string') throw new Error('time: missing (the hook always writes it)');
  // The same validation as the service's handler (functions/vmEvents/vmStateEvent.ts).
  const { change, reason } = parseVmEvent({ source: VM_EVENT_SOURCE, 'detail-type': VM_EVENT_DETAIL_TYPE, detail });
  const timeMs = Date.parse(d.time);
  // Send the fields the service reads, as the host wrote them (time keeps its form).
  const out = { vmId: change.vmId, userId: change.userId, domain: change.domain, hostId: change.hostId, state: change.state, ...(reason ? { reason } : {}), time: d.time };
  return {
    vmId: change.vmId,
    timeMs,
    entry: { Source: VM_EVENT_SOURCE, DetailType: VM_EVENT_DETAIL_TYPE, Detail: JSON.stringify(out), Time: new Date(timeMs), EventBusName: busName },
  };
};

export interface SenderOptions {
  spoolDir: string;
  busName: string;
  transport: EventTransport;
  /** Attempts per batch before the run gives up (records stay for the next run). */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** `.tmp-*` files older than this are left-overs of a hook that died mid-write. */
  staleTmpMs?: number;
}

export interface RunResult {
  sent: number;
  failed: number; // moved to failed/
  remaining: number; // still in the spool (sending gave up for now)
  error?: string;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SpoolSender {
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly log: (message: string, fields?: Record<string, unknown>) => void;

  constructor(private readonly options: SenderOptions) {
    this.maxAttempts = options.maxAttempts ?? 8;
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 20_000;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    this.log = options.log ?? (() => undefined);
  }

  get failedDir(): string {
    return join(this.options.spoolDir, 'failed');
  }

  /** Full jitter: a random wait in [0, min(max, base * 2^attempt)). */
  backoffMs(attempt: number): number {
    return Math.floor(this.random() * Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt));
  }

  /** Moves a record that can never be sent to failed/, with the reason next to it. */
  private fail(file: string, reason: string): void {
    mkdirSync(this.failedDir, { recursive: true });
    writeFileSync(join(this.failedDir, `${file}.reason`), `${new Date().toISOString()} ${reason}\n`);
    renameSync(join(this.options.spoolDir, file), join(this.failedDir, file));
    this.log('record moved to failed/', { level: 'warn', file, reason });
  }

  /** The valid records, oldest first; malformed ones are moved to failed/ on the way. */
  scan(): { records: SpoolRecord[]; failed: number } {
    const { spoolDir, busName } = this.options;
    let names: string[];
    try {
      names = readdirSync(spoolDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], failed: 0 };
      throw error;
    }
    const records: SpoolRecord[] = [];
    let failed = 0;
    const staleBefore = Date.now() - (this.options.staleTmpMs ?? 600_000);
    for (const file of names) {
      if (file.startsWith('.tmp-')) {
        try {
          if (statSync(join(spoolDir, file)).mtimeMs < staleBefore) unlinkSync(join(spoolDir, file));
        } catch {
          // renamed or removed meanwhile
        }
        continue;
      }
      if (!RECORD_FILE.test(file) || file.startsWith('.')) continue;
      let text: string;
      try {
        text = readFileSync(join(spoolDir, file), 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      try {
        records.push({ file, ...parseRecord(text, busName) });
      } catch (error) {
        this.fail(file, (error as Error).message);
        failed++;
      }
    }
    records.sort((a, b) => a.timeMs - b.timeMs || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    return { records, failed };
  }

  /** Sends everything in the spool once. */
  async runOnce(): Promise<RunResult> {
    const scanned = this.scan();
    const result: RunResult = { sent: 0, failed: scanned.failed, remaining: 0 };
    let pending = scanned.records;
    while (pending.length > 0) {
      // At most one record per VM per batch, each VM's oldest: order per VM holds.
      const batch: SpoolRecord[] = [];
      const seen = new Set<number>();
      for (const r of pending) {
        if (batch.length === 10) break;
        if (seen.has(r.vmId)) continue;
        seen.add(r.vmId);
        batch.push(r);
      }
      const outcome = await this.sendBatch(batch);
      result.sent += outcome.sent.length;
      result.failed += outcome.failed.length;
      if (outcome.error) {
        result.remaining = pending.length - outcome.sent.length - outcome.failed.length;
        result.error = outcome.error;
        return result;
      }
      const done = new Set([...outcome.sent, ...outcome.failed]);
      pending = pending.filter((r) => !done.has(r));
    }
    return result;
  }

  /** One batch: retries only the entries that failed, with backoff, until accepted or out of attempts. */
  private async sendBatch(batch: SpoolRecord[]): Promise<{ sent: SpoolRecord[]; failed: SpoolRecord[]; error?: string }> {
    const sent: SpoolRecord[] = [];
    const failed: SpoolRecord[] = [];
    let remaining = batch;
    let lastError = '';
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) await this.sleep(this.backoffMs(attempt - 1));
      let results: EntryResult[];
      try {
        results = await this.options.transport.put(remaining.map((r) => r.entry));
      } catch (error) {
        lastError = `${(error as Error).name ?? 'Error'}: ${(error as Error).message}`;
        this.log('PutEvents failed', { level: 'warn', attempt: attempt + 1, error: lastError, entries: remaining.length });
        if (!isRetryableError(error)) break;
        continue;
      }
      const retry: SpoolRecord[] = [];
      remaining.forEach((record, i) => {
        const r = results[i]!;
        if (r.ok) {
          this.accepted(record);
          sent.push(record);
        } else if (PERMANENT_ENTRY_ERRORS.has(r.errorCode)) {
          this.fail(record.file, `rejected by EventBridge: ${r.errorCode}${r.errorMessage ? `: ${r.errorMessage}` : ''}`);
          failed.push(record);
        } else {
          lastError = `entry failed: ${r.errorCode}${r.errorMessage ? `: ${r.errorMessage}` : ''}`;
          retry.push(record);
        }
      });
      if (retry.length) this.log('some entries failed, resending them', { level: 'warn', attempt: attempt + 1, failed: retry.length, error: lastError });
      remaining = retry;
      if (remaining.length === 0) return { sent, failed };
    }
    return { sent, failed, error: lastError || 'gave up' };
  }

  private accepted(record: SpoolRecord): void {
    try {
      unlinkSync(join(this.options.spoolDir, record.file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** Polls the spool until `signal` aborts; a failed run waits longer (capped backoff). */
  async watch(intervalMs: number, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let wait = intervalMs;
      try {
        const r = await this.runOnce();
        if (r.sent || r.failed || r.error) this.log('run', { ...r });
        failures = r.error ? failures + 1 : 0;
      } catch (error) {
        failures++;
        this.log('run crashed', { level: 'error', error: String(error) });
      }
      if (failures > 0) wait = Math.max(intervalMs, this.backoffMs(failures + 3));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }
}

// ---------------------------------------------------------------------------------
// Configuration and the command line

/** KEY=VALUE lines (the hook's /etc/cc1/host.env); `#` comments; quotes stripped. */
export const parseEnvFile = (text: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
};

export interface CliOptions {
  mode: 'once' | 'watch';
  intervalMs: number;
  spoolDir: string;
  busName: string;
  region?: string;
  endpoint?: string;
  localUrl?: string;
  maxAttempts?: number;
}

const USAGE = `usage: cc1-sender (--once | --watch) [--interval MS] [--config FILE] [--spool DIR]
       [--bus NAME] [--region REGION] [--endpoint URL] [--local URL] [--max-attempts N]
config file (default /etc/cc1/host.env): CC1_SPOOL_DIR, CC1_EVENT_BUS_NAME, AWS_REGION,
CC1_EVENTS_ENDPOINT (an EventBridge endpoint), CC1_LOCAL_EVENTS_URL (the local stack's URL:
sends to <url>/_local/events instead of AWS); the environment overrides the file.`;

const CLI_OPTIONS = {
  once: { type: 'boolean' },
  watch: { type: 'boolean' },
  help: { type: 'boolean' },
  interval: { type: 'string' },
  config: { type: 'string' },
  spool: { type: 'string' },
  bus: { type: 'string' },
  region: { type: 'string' },
  endpoint: { type: 'string' },
  local: { type: 'string' },
  'max-attempts': { type: 'string' },
} as const;

/** The flags, parsed by node:util (`--x v` and `--x=v`; an unknown flag or a missing value is refused). */
const parseCliArgs = (argv: string[]) => parseArgs({ args: argv, options: CLI_OPTIONS, strict: true, allowPositionals: false });

export const parseCli = (argv: string[], env: NodeJS.ProcessEnv, readFile: (path: string) => string | undefined): CliOptions => {
  let values: ReturnType<typeof parseCliArgs>['values'];
  try {
    ({ values } = parseCliArgs(argv));
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) throw new Error(USAGE);
  if (Boolean(values.once) === Boolean(values.watch)) throw new Error(`give exactly one of --once, --watch\n${USAGE}`);
  const configPath = values.config ?? env.CC1_HOST_ENV ?? '/etc/cc1/host.env';
  const text = readFile(configPath);
  const file = text === undefined ? {} : parseEnvFile(text);
  // A flag wins over the environment, which wins over the config file.
  const pick = (flag: string | undefined, key: string): string | undefined => flag ?? env[key] ?? file[key] ?? undefined;
  const busName = pick(values.bus, 'CC1_EVENT_BUS_NAME');
  const localUrl = pick(values.local, 'CC1_LOCAL_EVENTS_URL');
  if (!busName && !localUrl) throw new Error(`no event bus: set CC1_EVENT_BUS_NAME in ${configPath} or give --bus\n${USAGE}`);
  const interval = Number(pick(values.interval, 'CC1_SENDER_INTERVAL_MS') ?? 2000);
  if (!Number.isFinite(interval) || interval < 50) throw new Error('--interval must be a number of milliseconds >= 50');
  const maxAttempts = pick(values['max-attempts'], 'CC1_SENDER_MAX_ATTEMPTS');
  const region = pick(values.region, 'AWS_REGION');
  const endpoint = pick(values.endpoint, 'CC1_EVENTS_ENDPOINT');
  return {
    mode: values.once ? 'once' : 'watch',
    intervalMs: interval,
    spoolDir: pick(values.spool, 'CC1_SPOOL_DIR') ?? '/var/spool/cc1-vm-events',
    busName: busName ?? 'default',
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(localUrl ? { localUrl } : {}),
    ...(maxAttempts ? { maxAttempts: Number(maxAttempts) } : {}),
  };
};

const jsonLog = (message: string, fields: Record<string, unknown> = {}) =>
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', service: 'cc1-sender', message, ...fields }) + '\n');

export const main = async (argv: string[]): Promise<number> => {
  let cli: CliOptions;
  try {
    cli = parseCli(argv, process.env, (path) => {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  const transport = cli.localUrl
    ? new LocalEventTransport(cli.localUrl)
    : SdkEventTransport.create({ ...(cli.region ? { region: cli.region } : {}), ...(cli.endpoint ? { endpoint: cli.endpoint } : {}) });
  const sender = new SpoolSender({
    spoolDir: cli.spoolDir,
    busName: cli.busName,
    transport,
    ...(cli.maxAttempts ? { maxAttempts: cli.maxAttempts } : {}),
    log: jsonLog,
  });
  if (cli.mode === 'once') {
    const r = await sender.runOnce();
    jsonLog('done', { ...r, spool: cli.spoolDir, transport: cli.localUrl ? 'local' : 'eventbridge' });
    return r.error ? 1 : 0;
  }
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => stop.abort());
  jsonLog('watching', { spool: cli.spoolDir, intervalMs: cli.intervalMs, transport: cli.localUrl ? 'local' : 'eventbridge' });
  await sender.watch(cli.intervalMs, stop.signal);
  return 0;
};

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    },
  );
}
