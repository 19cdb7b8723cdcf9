/**
 * Event delivery (issue 8): VM State Change events through the local EventBridge entry
 * (`POST /_local/events`), duplicated, redelivered concurrently, reordered, for unknown
 * VMs, and with bad fields. Never a 5xx; one Detached per image and stop; a stale
 * event changes nothing; every bad event is dead-lettered with its reason and changes
 * nothing (no event appended, the VM directory as it was).
 */
import '../../local/localDefaults';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { attachImage, createImage } from '../../application/storageImages';
import { streamIdOf } from '../../domain/storageImage';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { HOST_ID, putVmEvents, RawClient, recordAppends, vmDetail, type AppendRecorder } from '../support/reliability';

jest.setTimeout(180_000);

const USER = 9001;
const CANARY = `/tmp/pwned-${randomBytes(6).toString('hex')}`;
let stack: LocalStack;
let client: RawClient;
let recorder: AppendRecorder;
const figures = { eventsSent: 0, deadLettered: 0, detachedChecked: 0, putEventsRejected: 0, httpRejected: 0 };

const iso = (offsetMs: number, base = Date.now()) => new Date(base + offsetMs).toISOString();

const send = async (details: unknown[], entry: Record<string, unknown> = {}) => {
  const reply = await putVmEvents(client, details, entry);
  figures.eventsSent += details.length;
  expect(reply.status).toBe(200);
  return reply.json as { FailedEntryCount: number; Entries: Array<{ EventId?: string; ErrorCode?: string }> };
};

const readyAttached = async (vmId: number, n: number): Promise<number[]> => {
  const { deps } = stack.container;
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    ids.push((await createImage(deps, { name: `ev ${i}`, description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 1 }, { kind: 'user', userId: USER })).id);
  }
  await stack.drain();
  for (const id of ids) await attachImage(deps, id, vmId, { kind: 'user', userId: USER });
  return ids;
};

const detachedCount = async (id: number) =>
  (await stack.container.deps.events.readStream(streamIdOf(id))).events.filter((e) => e.type === 'StorageImageDetached').length;

beforeAll(async () => {
  stack = await startLocalStack({ hypervisor: 'simulated', feedIntervalMs: 3_600_000 });
  client = new RawClient(stack.url, 16);
  recorder = recordAppends(stack);
});

afterAll(async () => {
  recorder?.restore();
  client?.close();
  await stack?.close();
  console.log(`event delivery figures: ${JSON.stringify(figures)}`);
});

test('a stop delivered 5 times in a batch and 10 times concurrently detaches each image once', async () => {
  const t0 = Date.now();
  await send([vmDetail(4001, USER, 'running', { time: iso(0, t0) })]);
  const ids = await readyAttached(4001, 3);
  const stop = vmDetail(4001, USER, 'stopped', { time: iso(1000, t0), reason: 'shutdown' });
  await send(Array.from({ length: 5 }, () => stop));
  await Promise.all(Array.from({ length: 10 }, () => send([stop])));
  for (const id of ids) {
    expect(await detachedCount(id)).toBe(1);
    figures.detachedChecked += 1;
    const last = (await stack.container.deps.events.readStream(streamIdOf(id))).events.at(-1)!;
    expect(last).toMatchObject({ type: 'StorageImageDetached', cause: { kind: 'system', reason: 'vm-stopped' } });
  }
  expect(Object.keys((await stack.container.deps.vms.get(4001))!.devices)).toEqual([]);
});

test('reordered: a late older "running" leaves the VM stopped; a redelivered old stop does not detach newer attaches', async () => {
  const t0 = Date.now();
  await send([vmDetail(4002, USER, 'running', { time: iso(0, t0) })]);
  const [first] = await readyAttached(4002, 1);
  // Stop at t0+2s, then the running event of t0+1s arrives late.
  await send([vmDetail(4002, USER, 'stopped', { time: iso(2000, t0), reason: 'shutdown' })]);
  await send([vmDetail(4002, USER, 'running', { time: iso(1000, t0) })]);
  expect((await stack.container.deps.vms.get(4002))!.state).toBe('stopped');
  expect(await detachedCount(first!)).toBe(1);
  // Started again (t0+3s), a new disk attached; then the old stop (t0+2s) is redelivered, and one even older.
  await send([vmDetail(4002, USER, 'running', { time: iso(3000, t0) })]);
  const [second] = await readyAttached(4002, 1);
  await send([vmDetail(4002, USER, 'stopped', { time: iso(2000, t0), reason: 'shutdown' }), vmDetail(4002, USER, 'stopped', { time: iso(500, t0), reason: 'crashed' })]);
  expect((await stack.container.deps.vms.get(4002))!.state).toBe('running');
  expect(await detachedCount(second!)).toBe(0);
  expect(await detachedCount(first!)).toBe(1);
  figures.detachedChecked += 2;
  // `migrated` and `saved` stops keep the disks.
  await send([vmDetail(4002, USER, 'stopped', { time: iso(4000, t0), reason: 'migrated' })]);
  expect(await detachedCount(second!)).toBe(0);
});

test('events for unknown VMs change no image and are not errors', async () => {
  const before = recorder.appends.length;
  const letters = stack.deadLetters.length;
  await send([vmDetail(4999, USER, 'stopped', { reason: 'shutdown' }), vmDetail(4998, USER, 'running'), vmDetail(4997, 42, 'stopped')]);
  expect(recorder.appends.length).toBe(before);
  expect(stack.deadLetters.length).toBe(letters);
});

/** Bad details: each must be dead-lettered with a reason naming what is wrong. */
const BAD: Array<{ title: string; detail: Record<string, unknown>; reason: RegExp }> = [
  { title: 'missing vmId', detail: { userId: USER, domain: `vm-4001-${USER}`, hostId: HOST_ID, state: 'stopped' }, reason: /vmId/ },
  { title: 'vmId as a string', detail: { ...vmDetail(4001, USER, 'stopped'), vmId: '4001' }, reason: /vmId/ },
  { title: 'vmId negative', detail: { ...vmDetail(4001, USER, 'stopped'), vmId: -4001 }, reason: /vmId/ },
  { title: 'vmId huge', detail: { ...vmDetail(4001, USER, 'stopped'), vmId: 1e30 }, reason: /vmId/ },
  { title: 'vmId fractional', detail: { ...vmDetail(4001, USER, 'stopped'), vmId: 4001.5 }, reason: /vmId/ },
  { title: 'userId as a string', detail: { ...vmDetail(4001, USER, 'stopped'), userId: String(USER) }, reason: /userId/ },
  { title: 'userId missing', detail: { vmId: 4001, domain: `vm-4001-${USER}`, hostId: HOST_ID, state: 'stopped' }, reason: /userId/ },
  { title: 'domain of another VM', detail: { ...vmDetail(4001, USER, 'stopped'), domain: `vm-4002-${USER}` }, reason: /domain must be vm-<vmId>-<userId>/ },
  { title: 'domain of another user', detail: { ...vmDetail(4001, USER, 'stopped'), domain: 'vm-4001-1' }, reason: /domain/ },
  { title: 'domain with shell metacharacters', detail: { ...vmDetail(4001, USER, 'stopped'), domain: `vm-4001-${USER}; touch ${CANARY}` }, reason: /domain/ },
  { title: 'hostId not an instance id', detail: { ...vmDetail(4001, USER, 'stopped'), hostId: 'i-XYZ' }, reason: /hostId/ },
  { title: 'hostId with traversal', detail: { ...vmDetail(4001, USER, 'stopped'), hostId: '../../etc/passwd' }, reason: /hostId/ },
  { title: 'hostId with shell metacharacters', detail: { ...vmDetail(4001, USER, 'stopped'), hostId: `mi-0123456789abcdef0$(touch ${CANARY})` }, reason: /hostId/ },
  { title: 'hostId missing', detail: { vmId: 4001, userId: USER, domain: `vm-4001-${USER}`, state: 'stopped' }, reason: /hostId/ },
  { title: 'state unknown', detail: { ...vmDetail(4001, USER, 'stopped'), state: 'paused' }, reason: /state/ },
  { title: 'state missing', detail: { vmId: 4001, userId: USER, domain: `vm-4001-${USER}`, hostId: HOST_ID }, reason: /state/ },
  { title: 'reason with spaces and shell text', detail: { ...vmDetail(4001, USER, 'stopped'), reason: `x; touch ${CANARY}` }, reason: /reason/ },
  { title: 'time not a time', detail: { ...vmDetail(4001, USER, 'stopped'), time: 'yesterday' }, reason: /time/ },
  { title: 'huge payload with a bad field', detail: { ...vmDetail(4001, USER, 'stopped'), state: 'x'.repeat(200_000) }, reason: /state/ },
  { title: 'unicode in the domain', detail: { ...vmDetail(4001, USER, 'stopped'), domain: `vm-4001-${USER}\u202e\u0000` }, reason: /domain/ },
];

test(`${BAD.length} kinds of bad event: dead-lettered with the reason, nothing changed, never a 5xx`, async () => {
  // A VM with disks attached, which each bad event names.
  await send([vmDetail(4003, USER, 'running')]);
  const ids = await readyAttached(4003, 2);
  const vmBefore = JSON.stringify(await stack.container.deps.vms.get(4003));
  const appendsBefore = recorder.appends.length;
  for (const bad of BAD) {
    const detail = { ...bad.detail };
    for (const k of ['vmId', 'domain'] as const) if (detail[k] === 4001) detail[k] = 4003; // name VM 4003
    if (detail.domain === `vm-4001-${USER}`) detail.domain = `vm-4003-${USER}`;
    const letters = stack.deadLetters.length;
    const reply = await send([detail]);
    expect(reply.FailedEntryCount).toBe(0); // EventBridge accepted it; delivery failed
    const letter = stack.deadLetters[letters];
    expect({ title: bad.title, count: stack.deadLetters.length - letters }).toEqual({ title: bad.title, count: 1 });
    expect(letter!.reason).toMatch(bad.reason);
    expect(letter!.reason).toMatch(/^bad VM State Change event: /);
    expect(JSON.parse(letter!.entry.Detail as string)).toEqual(detail);
    figures.deadLettered += 1;
  }
  expect(recorder.appends.length).toBe(appendsBefore);
  // The bad events named VM 4003 as stopped: it still runs, its disks still attached.
  const vmAfter = await stack.container.deps.vms.get(4003);
  expect(vmAfter!.state).toBe('running');
  expect(Object.keys(vmAfter!.devices).length).toBe(2);
  expect(JSON.stringify(vmAfter)).toBe(vmBefore);
  for (const id of ids) expect(await detachedCount(id)).toBe(0);
  // The dead-letter path is readable over HTTP too.
  const listed = await client.send({ method: 'GET', path: '/_local/dead-letters' });
  expect(listed.status).toBe(200);
  expect((listed.json as { items: unknown[] }).items).toHaveLength(stack.deadLetters.length);
  expect(existsSync(CANARY)).toBe(false);
});

test('malformed PutEvents entries are refused per entry (as EventBridge does), malformed requests with 400, never a 5xx', async () => {
  const appendsBefore = recorder.appends.length;
  const letters = stack.deadLetters.length;
  const entries = [
    { Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: '{not json' },
    { Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: '[1,2]' },
    { Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: 'null' },
    { Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: { vmId: 1 } },
    { Source: 'cc1.hypervisor', DetailType: 42, Detail: '{}' },
    null,
  ];
  const reply = await client.send({ method: 'POST', path: '/_local/events', body: { Entries: entries } });
  expect(reply.status).toBe(200);
  const json = reply.json as { FailedEntryCount: number; Entries: Array<{ ErrorCode?: string }> };
  expect(json.FailedEntryCount).toBe(entries.length);
  figures.putEventsRejected += entries.length;
  // Another source or detail-type: accepted by the bus, matched by no rule, delivered nowhere.
  const other = await send([vmDetail(4003, USER, 'stopped')], { Source: 'someone.else' });
  expect(other.FailedEntryCount).toBe(0);
  for (const body of ['{', '[]', '{"Entries": 5}', '{"Entries": []}', JSON.stringify({ Entries: Array.from({ length: 11 }, () => entries[0]) }), '\u0000']) {
    const r = await client.send({ method: 'POST', path: '/_local/events', body });
    expect(r.status).toBe(400);
    figures.httpRejected += 1;
  }
  // Over the 1 MB body limit: 413 with its JSON error, every time (bug 7: the server used to cut the
  // connection while the client still sent, so the client saw ECONNRESET or EPIPE instead).
  const bigClient = new RawClient(stack.url, 1);
  try {
    for (let i = 0; i < 3; i++) {
      const huge = await bigClient.send({ method: 'POST', path: '/_local/events', body: JSON.stringify({ Entries: [{ Source: 'x', DetailType: 'y', Detail: 'x'.repeat(2_000_000) }] }) });
      expect({ status: huge.status, json: huge.json }).toEqual({ status: 413, json: { error: { code: 'validation', message: 'The body is too large.' } } });
    }
  } finally {
    bigClient.close();
  }
  expect(recorder.appends.length).toBe(appendsBefore);
  expect(stack.deadLetters.length).toBe(letters);
  expect((await stack.container.deps.vms.get(4003))!.state).toBe('running');
});
