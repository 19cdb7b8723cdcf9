/**
 * The reconciler's cursor across runs (issue 14's gap), against DynamoDB Local: the VM
 * directory and the cursor item are real control-table items; the hosts are the test
 * support's fake ones, which record the order the hosts are asked in (hosts are not
 * what this tests). A run's remaining time is a function of how many hosts it has
 * started, not of the clock: no timed assertions.
 * - a run stopped after k hosts leaves the cursor at host k; the next starts at host
 *   k+1, wraps around to the top, and clears it;
 * - a finished run leaves no cursor: the next starts from the top;
 * - a run that dies mid-way has left its progress;
 * - two runs cannot fight over the cursor (every write is guarded by its version).
 */
import { reconcile, type ReconcileOptions } from '../../application/reconciler';
import type { ServiceDeps } from '../../application/storageImages';
import { DynamoReconcilerCursor } from '../../adapters/dynamodb/reconcilerCursor';
import { serviceDeps, useTestDynamo } from '../support/dynamo';

const dynamo = useTestDynamo();
const USER = 5501;
const HOSTS = Array.from({ length: 6 }, (_, i) => `mi-00000000000000${String(i + 1).padStart(3, '0')}`);
const MINUTES = 60_000;

let deps: ServiceDeps;
let cursor: DynamoReconcilerCursor;
/** The hosts asked for their disks, in order, in the current run. */
let asked: string[] = [];
/** Runs inside a host's listDisks, before it answers (to crash or to race). */
let onAsk: (hostId: string) => Promise<void> = async () => undefined;

beforeAll(async () => {
  const { stores } = dynamo();
  const base = serviceDeps(stores);
  const listDisks = base.hypervisor.listDisks;
  deps = {
    ...base,
    hypervisor: {
      ...base.hypervisor,
      listDisks: async (target) => {
        asked.push(target.hostId);
        await onAsk(target.hostId);
        return listDisks(target);
      },
    },
  };
  cursor = stores.reconcilerCursor;
  // One running VM per host, listed in an order unrelated to the host ids.
  for (const [i, hostId] of [...HOSTS.entries()].reverse()) {
    const vmId = 5510 + i;
    await stores.vms.recordState({ vmId, userId: USER, domain: `vm-${vmId}-${USER}`, hostId, state: 'running', time: '2024-05-01T10:00:00.000Z' });
  }
});

beforeEach(async () => {
  asked = [];
  onAsk = async () => undefined;
  // Each test starts from a cleared cursor.
  const { version } = await cursor.read();
  expect(await cursor.write(undefined, version)).toBe(version + 1);
});

/** A run that has time for `k` hosts: its remaining time drops below the reserve once k hosts were started. */
const runWithTimeFor = (k: number, options: ReconcileOptions = {}) =>
  reconcile(deps, { cursor, hostConcurrency: 1, reserveMs: MINUTES, remainingTimeMs: () => (asked.length < k ? 5 * MINUTES : MINUTES - 1), ...options });
const fullRun = (options: ReconcileOptions = {}) => reconcile(deps, { cursor, hostConcurrency: 1, remainingTimeMs: () => 5 * MINUTES, ...options });

test('a run stopped after k hosts resumes at host k+1 next time, wraps around to the top, and then clears the cursor', async () => {
  const first = await runWithTimeFor(2);
  expect(asked).toEqual(HOSTS.slice(0, 2));
  expect(first).toMatchObject({ vmsChecked: 2, hostsNotStarted: 4, cursor: HOSTS[1] });
  expect(first.resumedAfter).toBeUndefined();
  expect((await cursor.read()).afterHost).toBe(HOSTS[1]);

  asked = [];
  const second = await fullRun();
  expect(asked).toEqual([...HOSTS.slice(2), ...HOSTS.slice(0, 2)]);
  expect(second).toMatchObject({ vmsChecked: 6, resumedAfter: HOSTS[1] });
  expect(second.hostsNotStarted).toBeUndefined();
  expect(second.cursor).toBeUndefined();
  expect((await cursor.read()).afterHost).toBeUndefined();
});

test('runs that are each cut short still reach every host between them, in turn', async () => {
  const seen: string[][] = [];
  for (let run = 0; run < 4; run++) {
    asked = [];
    await runWithTimeFor(4);
    seen.push(asked);
  }
  expect(seen).toEqual([
    HOSTS.slice(0, 4),
    [...HOSTS.slice(4), ...HOSTS.slice(0, 2)],
    HOSTS.slice(2, 6),
    HOSTS.slice(0, 4),
  ]);
});

test('a finished run leaves no cursor: the next run starts from the top', async () => {
  await fullRun();
  expect(asked).toEqual(HOSTS);
  expect((await cursor.read()).afterHost).toBeUndefined();

  asked = [];
  const next = await runWithTimeFor(3);
  expect(asked).toEqual(HOSTS.slice(0, 3));
  expect(next.resumedAfter).toBeUndefined();
});

test('a run that dies mid-way has left the cursor at the last host it finished', async () => {
  onAsk = async (hostId) => {
    if (hostId === HOSTS[3]) throw new Error('Task timed out'); // the Lambda is gone
  };
  await expect(fullRun()).rejects.toThrow('Task timed out');
  expect((await cursor.read()).afterHost).toBe(HOSTS[2]);

  onAsk = async () => undefined;
  asked = [];
  const next = await fullRun();
  expect(next.resumedAfter).toBe(HOSTS[2]);
  expect(asked[0]).toBe(HOSTS[3]);
});

test('a targeted run (vmIds) neither reads nor moves the cursor', async () => {
  await runWithTimeFor(2);
  asked = [];
  await reconcile(deps, { cursor, vmIds: [5510 + 4] });
  expect(asked).toEqual([HOSTS[4]]);
  expect((await cursor.read()).afterHost).toBe(HOSTS[1]);
});

test('two runs cannot fight over the cursor: once another run moved it, a run leaves it alone', async () => {
  const other = new DynamoReconcilerCursor(dynamo().stores.doc, dynamo().stores.names.control);
  onAsk = async (hostId) => {
    if (hostId !== HOSTS[0]) return;
    // Another run, started on the same cursor, moves it while this one checks its first host.
    const { version } = await other.read();
    expect(await other.write(HOSTS[4], version)).toBe(version + 1);
  };
  const report = await runWithTimeFor(3);
  expect(asked).toEqual(HOSTS.slice(0, 3));
  // This run's writes (after host 1, after host 2) were refused: the other run's cursor stands.
  expect((await cursor.read()).afterHost).toBe(HOSTS[4]);
  expect(report.cursor).toBeUndefined();

  // And the cursor store itself: a write at a version that is no longer current is refused.
  const { version } = await cursor.read();
  expect(await cursor.write(HOSTS[0], version - 1)).toBe(false);
  expect(await other.write(HOSTS[5], version)).toBe(version + 1);
  expect((await cursor.read()).afterHost).toBe(HOSTS[5]);
});
