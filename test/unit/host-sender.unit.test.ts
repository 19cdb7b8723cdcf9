/**
 * cc1-sender against a mocked EventBridge (aws-sdk-client-mock): retries, partial
 * failures, malformed records, removal only after acceptance, order per VM.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsCommandInput } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRetryableError, parseCli, parseEnvFile, SdkEventTransport, SpoolSender } from '../../host/sender';

const HOST = 'mi-0a1b2c3d4e5f60718';
const BUS = 'cc1-vm-events';
const ebMock = mockClient(EventBridgeClient);

let spool: string;
const delays: number[] = [];

const record = (vmId: number, userId: number, state: 'running' | 'stopped', time: string, extra: Record<string, unknown> = {}) => ({
  vmId,
  userId,
  domain: `vm-${vmId}-${userId}`,
  hostId: HOST,
  state,
  time,
  ...extra,
});
const spoolWrite = (name: string, body: unknown) =>
  writeFileSync(join(spool, name), typeof body === 'string' ? body : JSON.stringify(body) + '\n');
const spoolFiles = () => readdirSync(spool).filter((f) => f.endsWith('.json'));

const sender = (overrides: Partial<ConstructorParameters<typeof SpoolSender>[0]> = {}) =>
  new SpoolSender({
    spoolDir: spool,
    busName: BUS,
    transport: new SdkEventTransport(new EventBridgeClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })),
    sleep: async (ms) => {
      delays.push(ms);
    },
    random: () => 0.5,
    maxAttempts: 5,
    ...overrides,
  });

const sentEntries = () => ebMock.commandCalls(PutEventsCommand).map((c) => (c.args[0].input as PutEventsCommandInput).Entries ?? []);
const details = (entries: NonNullable<PutEventsCommandInput['Entries']>) => entries.map((e) => JSON.parse(e.Detail!) as Record<string, unknown>);

beforeEach(() => {
  ebMock.reset();
  delays.length = 0;
  spool = mkdtempSync(join(tmpdir(), 'cc1-spool-'));
});
afterEach(() => rmSync(spool, { recursive: true, force: true }));

test('sends a record as a VM State Change on the bus, then removes it', async () => {
  spoolWrite('20250101T000000001Z-1-a.json', record(5, 7, 'stopped', '2025-01-01T00:00:00.001Z', { reason: 'shutdown' }));
  ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });

  const result = await sender().runOnce();

  expect(result).toEqual({ sent: 1, failed: 0, remaining: 0 });
  const [entries] = sentEntries();
  expect(entries).toHaveLength(1);
  expect(entries![0]).toMatchObject({ Source: 'cc1.hypervisor', DetailType: 'VM State Change', EventBusName: BUS });
  expect(entries![0]!.Time).toEqual(new Date('2025-01-01T00:00:00.001Z'));
  expect(details(entries!)[0]).toEqual({ vmId: 5, userId: 7, domain: 'vm-5-7', hostId: HOST, state: 'stopped', reason: 'shutdown', time: '2025-01-01T00:00:00.001Z' });
  expect(spoolFiles()).toEqual([]);
});

test('throttling, then success: backs off with jitter and keeps the record until accepted', async () => {
  spoolWrite('a.json', record(5, 7, 'running', '2025-01-01T00:00:00.000Z'));
  const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
  let calls = 0;
  ebMock.on(PutEventsCommand).callsFake(async () => {
    calls++;
    // The record must still be in the spool while it has not been accepted.
    expect(existsSync(join(spool, 'a.json'))).toBe(true);
    if (calls <= 2) throw throttled;
    return { FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] };
  });

  const result = await sender({ baseDelayMs: 100 }).runOnce();

  expect(result).toEqual({ sent: 1, failed: 0, remaining: 0 });
  expect(calls).toBe(3);
  // Full jitter (random 0.5): half of 100 * 2^0, then half of 100 * 2^1.
  expect(delays).toEqual([50, 100]);
  expect(spoolFiles()).toEqual([]);
});

test('a network error is retried too', async () => {
  spoolWrite('a.json', record(5, 7, 'running', '2025-01-01T00:00:00.000Z'));
  const network = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  ebMock.on(PutEventsCommand).rejectsOnce(network).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });
  expect(await sender().runOnce()).toEqual({ sent: 1, failed: 0, remaining: 0 });
  expect(isRetryableError(network)).toBe(true);
  expect(isRetryableError(Object.assign(new Error('no'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }))).toBe(false);
});

test('partial failure: only the failed entry is resent; each file goes when its entry is accepted', async () => {
  spoolWrite('1.json', record(1, 7, 'stopped', '2025-01-01T00:00:01.000Z'));
  spoolWrite('2.json', record(2, 7, 'stopped', '2025-01-01T00:00:02.000Z'));
  spoolWrite('3.json', record(3, 7, 'stopped', '2025-01-01T00:00:03.000Z'));
  ebMock
    .on(PutEventsCommand)
    .resolvesOnce({
      FailedEntryCount: 1,
      Entries: [{ EventId: 'e1' }, { ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }, { EventId: 'e3' }],
    })
    .callsFake(async () => {
      expect(spoolFiles()).toEqual(['2.json']); // 1 and 3 were removed once accepted
      return { FailedEntryCount: 0, Entries: [{ EventId: 'e2' }] };
    });

  const result = await sender().runOnce();

  expect(result).toEqual({ sent: 3, failed: 0, remaining: 0 });
  const calls = sentEntries();
  expect(calls.map((entries) => details(entries).map((d) => d.vmId))).toEqual([[1, 2, 3], [2]]);
  expect(spoolFiles()).toEqual([]);
});

test('gives up after maxAttempts and leaves the unaccepted records in the spool', async () => {
  spoolWrite('1.json', record(1, 7, 'stopped', '2025-01-01T00:00:01.000Z'));
  ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException' }] });
  const result = await sender({ maxAttempts: 3 }).runOnce();
  expect(result).toMatchObject({ sent: 0, failed: 0, remaining: 1, error: expect.stringContaining('ThrottlingException') });
  expect(ebMock.commandCalls(PutEventsCommand)).toHaveLength(3);
  expect(spoolFiles()).toEqual(['1.json']);
});

test('a non-retryable call error stops the run at once; records stay', async () => {
  spoolWrite('1.json', record(1, 7, 'stopped', '2025-01-01T00:00:01.000Z'));
  ebMock.on(PutEventsCommand).rejects(Object.assign(new Error('not allowed'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }));
  const result = await sender().runOnce();
  expect(result).toMatchObject({ sent: 0, remaining: 1, error: expect.stringContaining('AccessDenied') });
  expect(ebMock.commandCalls(PutEventsCommand)).toHaveLength(1);
  expect(spoolFiles()).toEqual(['1.json']);
});

test('malformed records go to failed/ with the reason; good ones are sent', async () => {
  spoolWrite('bad-json.json', '{"vmId": 1,');
  spoolWrite('bad-domain.json', { ...record(1, 7, 'stopped', '2025-01-01T00:00:01.000Z'), domain: 'vm-2-7' });
  spoolWrite('bad-host.json', { ...record(1, 7, 'stopped', '2025-01-01T00:00:01.000Z'), hostId: '' });
  spoolWrite('bad-state.json', record(1, 7, 'paused' as 'running', '2025-01-01T00:00:01.000Z'));
  spoolWrite('no-time.json', { vmId: 1, userId: 7, domain: 'vm-1-7', hostId: HOST, state: 'stopped' });
  spoolWrite('good.json', record(1, 7, 'stopped', '2025-01-01T00:00:02.000Z'));
  writeFileSync(join(spool, '.tmp-being-written'), '{"vm'); // a hook mid-write: left alone
  ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });

  const result = await sender().runOnce();

  expect(result).toEqual({ sent: 1, failed: 5, remaining: 0 });
  expect(spoolFiles()).toEqual([]);
  expect(existsSync(join(spool, '.tmp-being-written'))).toBe(true);
  const failed = join(spool, 'failed');
  expect(readdirSync(failed).sort()).toEqual(
    ['bad-domain.json', 'bad-host.json', 'bad-json.json', 'bad-state.json', 'no-time.json'].flatMap((f) => [f, `${f}.reason`]).sort(),
  );
  const reason = (f: string) => readFileSync(join(failed, `${f}.reason`), 'utf8');
  expect(reason('bad-json.json')).toMatch(/not JSON/);
  expect(reason('bad-domain.json')).toMatch(/domain must be vm-<vmId>-<userId>/);
  expect(reason('bad-host.json')).toMatch(/hostId/);
  expect(reason('bad-state.json')).toMatch(/state/);
  expect(reason('no-time.json')).toMatch(/time/);
  expect(details(sentEntries()[0]!)).toEqual([expect.objectContaining({ vmId: 1, time: '2025-01-01T00:00:02.000Z' })]);
});

test('an entry EventBridge calls malformed goes to failed/ and is not resent', async () => {
  spoolWrite('1.json', record(1, 7, 'stopped', '2025-01-01T00:00:01.000Z'));
  ebMock.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'MalformedDetail', ErrorMessage: 'bad' }] });
  expect(await sender().runOnce()).toEqual({ sent: 0, failed: 1, remaining: 0 });
  expect(ebMock.commandCalls(PutEventsCommand)).toHaveLength(1);
  expect(readFileSync(join(spool, 'failed', '1.json.reason'), 'utf8')).toMatch(/MalformedDetail: bad/);
});

test('oldest first, batches of at most 10, and a VM’s next record only after its previous one was accepted', async () => {
  // 12 VMs with one record each, and VM 1 with a later second record; names out of time order.
  for (let vm = 1; vm <= 12; vm++) spoolWrite(`z-${vm}.json`, record(vm, 7, 'running', `2025-01-01T00:00:${String(vm).padStart(2, '0')}.000Z`));
  spoolWrite('a-1-stop.json', record(1, 7, 'stopped', '2025-01-01T00:01:00.000Z'));
  ebMock.on(PutEventsCommand).callsFake(async (input: PutEventsCommandInput) => ({
    FailedEntryCount: 0,
    Entries: input.Entries!.map((_, i) => ({ EventId: `e${i}` })),
  }));

  expect(await sender().runOnce()).toEqual({ sent: 13, failed: 0, remaining: 0 });

  const calls = sentEntries().map((entries) => details(entries).map((d) => `${d.vmId}:${d.state}`));
  expect(calls[0]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((vm) => `${vm}:running`));
  expect(calls[1]).toEqual(['11:running', '12:running', '1:stopped']);
  expect(calls.every((c) => c.length <= 10)).toBe(true);
});

test('the command line and the config file', () => {
  const env = parseEnvFile('# cc1\nCC1_HOST_ID="mi-0a1b2c3d4e5f60718"\nexport CC1_EVENT_BUS_NAME=cc1-bus\nCC1_SPOOL_DIR=/var/spool/x\n');
  expect(env).toEqual({ CC1_HOST_ID: 'mi-0a1b2c3d4e5f60718', CC1_EVENT_BUS_NAME: 'cc1-bus', CC1_SPOOL_DIR: '/var/spool/x' });
  const read = () => 'CC1_EVENT_BUS_NAME=cc1-bus\nCC1_SPOOL_DIR=/var/spool/x\nAWS_REGION=eu-west-1\n';
  expect(parseCli(['--watch', '--interval', '500'], {}, read)).toEqual({
    mode: 'watch',
    intervalMs: 500,
    spoolDir: '/var/spool/x',
    busName: 'cc1-bus',
    region: 'eu-west-1',
  });
  expect(parseCli(['--once', '--spool=/tmp/s', '--local', 'http://127.0.0.1:3000'], { CC1_EVENT_BUS_NAME: 'env-bus' }, () => undefined)).toMatchObject({
    mode: 'once',
    spoolDir: '/tmp/s',
    busName: 'env-bus',
    localUrl: 'http://127.0.0.1:3000',
  });
  expect(() => parseCli([], {}, read)).toThrow(/--once, --watch/);
  expect(() => parseCli(['--once'], {}, () => undefined)).toThrow(/no event bus/);
});
