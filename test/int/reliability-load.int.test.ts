/**
 * Load (issue 8): 200 concurrent virtual users creating, attaching, detaching and
 * revoking disks on 20 running VMs (simulated hypervisor), through the local HTTP
 * server, for a bounded time (LOAD_SECONDS, default 45). The 20 VMs belong to 20 users;
 * 10 virtual users share each user and VM; 5 of them attach and detach, so attaches race
 * for the same VM's devices. Meanwhile a chaos loop stops and restarts a VM now and then (VM
 * events), so auto-detach races the users too.
 *
 * Then, every event is counted against the requests that succeeded, image by image:
 * - one Created per 2xx create, and streams only for those;
 * - one Attached per 2xx attach, each after its own AttachRequested; an AttachRequested
 *   without Attached only for a refused attach (closed by AttachFailed);
 * - one user Detached per 2xx detach, one Revoked per 2xx revoke, in the order the
 *   user's requests succeeded; other Detached only by the system for a stopped VM;
 * - versions contiguous; the read model equal to the log and to a rebuild into a fresh
 *   table; no device held by two images; each running VM's disks on the host = the records.
 * No 5xx but deliberate 503s (hypervisor unavailable) on attach and detach; a 5xx on a read
 * (recorded apart from the outcomes) fails: a timed-out read is overload, not a host's fault.
 * Every attacher that had its disk in time tried an attach; every refused attach has its
 * cause (its VM was stopped by the chaos loop during the request, or the host was
 * unavailable), and at least half succeed; every Attached is undone by a Detached before
 * the image is revoked.
 *
 * Arrivals and think times come from a PRNG per virtual user, seeded from the run's seed
 * (printed; CC1_TEST_SEED=<seed> replays the same schedule).
 */
import '../../local/localDefaults';
import { documentClient } from '../../adapters/dynamodb/dynamo';
import { rebuildImages } from '../../adapters/dynamodb/rebuild';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { signLocalToken } from '../../local/jwt';
import { seededRandom, testSeed } from '../support/seed';
import {
  allStreams,
  contiguityProblems,
  deviceProblems,
  putVmEvents,
  RawClient,
  readModelProblems,
  sleep,
  vmDetail,
} from '../support/reliability';

const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 45);
const VUS = Number(process.env.LOAD_VUS ?? 200);
const VMS = 20;
const USER0 = 8000;
const VM0 = 3000;
jest.setTimeout((LOAD_SECONDS + 240) * 1000);

const SEED = testSeed('reliability-load');

type Op = 'create' | 'attach' | 'detach' | 'revoke' | 'read';
interface Outcome {
  vu: number;
  op: Op;
  imageId?: number;
  status: number;
  code?: string;
  /** When the request was sent and answered (ms). */
  sent: number;
  answered: number;
}

/** The chaos loop's stops: VM, from the stop event sent until its start event was answered. */
const stoppedWindows: { vmId: number; from: number; to: number }[] = [];
/** Attacher VUs whose disk was ready early enough to attach in the window, and those that tried. */
const readyEarly = new Set<number>();
const triedAttach = new Set<number>();

let stack: LocalStack;
let client: RawClient;
const outcomes: Outcome[] = [];
const failedReads: Outcome[] = [];
const tokens: string[] = [];
const figures = { requests: 0, byOpStatus: {} as Record<string, number>, vmStops: 0, vmStarts: 0, iterations: 0 };

beforeAll(async () => {
  // Host commands polled every 250 ms (not 25): hundreds are in flight at once. The stream pollers are
  // driven by this test, one pass after the other (see feedLoop), not by the stack's timer.
  stack = await startLocalStack({ hypervisor: 'simulated', feedIntervalMs: 3_600_000, config: { defaultQuotaMb: 1_000_000, hostCommandPollMs: 250 } });
  client = new RawClient(stack.url, 256);
  for (let i = 0; i < VMS; i++) {
    tokens.push(await signLocalToken({ userId: USER0 + i }));
    expect((await putVmEvents(client, [vmDetail(VM0 + i, USER0 + i, 'running')])).status).toBe(200);
  }
});

afterAll(async () => {
  client?.close();
  await stack?.close();
  console.log(`load figures: ${JSON.stringify(figures)}`);
});

const call = async (vu: number, op: Op, method: string, path: string, token: string, body?: unknown, imageId?: number) => {
  const sent = Date.now();
  const reply = await client.send({ method, path, token, ...(body !== undefined ? { body } : {}) });
  const answered = Date.now();
  const code = (reply.json as { error?: { code?: string } })?.error?.code;
  figures.requests += 1;
  const key = `${op} ${reply.status}${code ? ` ${code}` : ''}`;
  figures.byOpStatus[key] = (figures.byOpStatus[key] ?? 0) + 1;
  const id = imageId ?? (op === 'create' && reply.status === 201 ? (reply.json as { id: number }).id : undefined);
  // Reads are not matched against events, but a read's 5xx still counts (below).
  if (op === 'read' && reply.status >= 500) failedReads.push({ vu, op, status: reply.status, sent, answered, ...(code ? { code } : {}) });
  if (op !== 'read') outcomes.push({ vu, op, status: reply.status, sent, answered, ...(id !== undefined ? { imageId: id } : {}), ...(code ? { code } : {}) });
  return reply;
};

/** One virtual user: create, wait until ready, attach, detach, revoke; again until the time is up. */
/**
 * Users think 1 to 3 s between clicks. Each hot attach or detach runs the simulated
 * virsh (child processes, one state file under one lock) through the local Run Command
 * endpoint: on the shared 2-core machine it does about 2 host operations a second, so
 * a quarter of the users attach (spread over the window); with all 200 attaching, requests
 * passed the 30 s Lambda time and answered 500 (docs/reliability.md, bugs).
 */
const virtualUser = async (vu: number, deadline: number) => {
  // Its own PRNG: the VUs interleave differently on every run, but each one's schedule is the seed's.
  const random = seededRandom((SEED + vu * 0x9e3779b9) >>> 0);
  const think = () => sleep(1000 + Math.floor(random() * 2000));
  const u = vu % VMS;
  const token = tokens[u]!;
  const vmId = VM0 + u;
  await sleep(Math.floor(random() * 10_000)); // users arrive over 10 s
  while (Date.now() < deadline) {
    figures.iterations += 1;
    const created = await call(vu, 'create', 'POST', '/storage-images', token, { name: `vu ${vu}`, diskController: vu % 2 ? 'virtio' : 'usb', sizeMb: 1 });
    if (created.status !== 201) continue;
    const id = (created.json as { id: number }).id;
    // The disk file is made by the stream reaction: wait for `ok`.
    let ready = false;
    while (!ready && Date.now() < deadline + 20_000) {
      await sleep(2000);
      const got = await call(vu, 'read', 'GET', `/storage-images/${id}`, token);
      ready = (got.json as { state?: string })?.state === 'ok';
    }
    if (!ready) return;
    // A quarter of the users (5 per VM) attach and detach the disk, at a random time in the window;
    // then every user revokes it and starts over.
    const attacher = vu % 4 === 0;
    // Ready 10 s before the end: the attach below is sure to be tried.
    if (attacher && Date.now() < deadline - 10_000) readyEarly.add(vu);
    if (attacher) await sleep(Math.floor(random() * Math.max(0, deadline - 10_000 - Date.now())));
    for (let cycle = 0; attacher && cycle < 1 && Date.now() < deadline; cycle++) {
      await think();
      triedAttach.add(vu);
      const attached = await call(vu, 'attach', 'POST', `/storage-images/${id}/attach`, token, { vmId }, id);
      if (attached.status === 200) {
        await think();
        // The chaos loop may have stopped the VM meanwhile (then the image is detached already: 409).
        await call(vu, 'detach', 'POST', `/storage-images/${id}/detach`, token, { vmId }, id);
      }
    }
    await think();
    const revoked = await call(vu, 'revoke', 'DELETE', `/storage-images/${id}`, token, undefined, id);
    if (revoked.status === 409) {
      // Still attached (a detach refused): detach without naming the VM, then revoke.
      await call(vu, 'detach', 'POST', `/storage-images/${id}/detach`, token, {}, id);
      await call(vu, 'revoke', 'DELETE', `/storage-images/${id}`, token, undefined, id);
    }
  }
};

/**
 * The stream pollers (projector, disk files) driven by the test: one pass of both after
 * the other, 500 ms apart, so their work under this load stays bounded and visible.
 */
const feedLoop = async (until: () => boolean) => {
  while (!until()) {
    await stack.drain();
    await sleep(500);
  }
};

/** Stops a VM now and then and starts it again (auto-detach under load). */
const chaos = async (deadline: number) => {
  let n = 0;
  while (Date.now() < deadline - 3000) {
    await sleep(4000);
    const i = (n++ * 7) % VMS;
    const window = { vmId: VM0 + i, from: Date.now(), to: Number.POSITIVE_INFINITY };
    stoppedWindows.push(window);
    expect((await putVmEvents(client, [vmDetail(VM0 + i, USER0 + i, 'stopped', { reason: 'shutdown' })])).status).toBe(200);
    figures.vmStops += 1;
    await sleep(1000);
    expect((await putVmEvents(client, [vmDetail(VM0 + i, USER0 + i, 'running')])).status).toBe(200);
    window.to = Date.now();
    figures.vmStarts += 1;
  }
};

test(`${VUS} virtual users on ${VMS} VMs for ${LOAD_SECONDS} s: nothing lost, nothing doubled, the records agree`, async () => {
  const started = Date.now();
  const deadline = started + LOAD_SECONDS * 1000;
  let done = false;
  const feeding = feedLoop(() => done);
  await Promise.all([...Array.from({ length: VUS }, (_, vu) => virtualUser(vu, deadline)), chaos(deadline)]);
  done = true;
  await feeding;
  const elapsed = (Date.now() - started) / 1000;
  await stack.drain();
  await stack.drain();

  // No 5xx but a host's deliberate 503, and only where a host is asked (attach, detach): a read,
  // create or revoke that runs out of time answers 503 `timeout` (overload), and fails this test.
  const hostWork = new Set<Op>(['attach', 'detach']);
  const fivexx = [...outcomes, ...failedReads].filter((o) => o.status >= 500 && !(o.status === 503 && o.code === 'hypervisor_unavailable' && hostWork.has(o.op)));
  expect(fivexx).toEqual([]);

  // Every event against the requests that succeeded, image by image.
  const streams = await allStreams(stack);
  const byImage = new Map<number, Outcome[]>();
  for (const o of outcomes) if (o.imageId !== undefined) byImage.set(o.imageId, [...(byImage.get(o.imageId) ?? []), o]);
  const created = outcomes.filter((o) => o.op === 'create' && o.status === 201).map((o) => o.imageId!);
  expect(new Set(created).size).toBe(created.length);
  expect([...streams.keys()].sort()).toEqual(created.map((id) => `image-${id}`).sort());

  const problems: string[] = [];
  const counts = { events: 0, created: 0, attachRequested: 0, attached: 0, attachFailed: 0, detachedByUser: 0, detachedBySystem: 0, revoked: 0, ready: 0 };
  const TYPE: Record<string, string> = { create: 'StorageImageCreated', attach: 'StorageImageAttached', detach: 'StorageImageDetached', revoke: 'StorageImageRevoked' };
  for (const id of created) {
    const events = streams.get(`image-${id}`) ?? [];
    const ops = byImage.get(id) ?? [];
    counts.events += events.length;
    // The user's successful requests, in order, are exactly the user-caused outcome events.
    const expected = ops.filter((o) => o.status >= 200 && o.status < 300).map((o) => TYPE[o.op]);
    const actual = events
      .filter((e) => ['StorageImageCreated', 'StorageImageAttached', 'StorageImageRevoked'].includes(e.type) || (e.type === 'StorageImageDetached' && e.cause.kind === 'user'))
      .map((e) => e.type);
    if (JSON.stringify(actual) !== JSON.stringify(expected)) problems.push(`image ${id}: 2xx ${JSON.stringify(expected)} but events ${JSON.stringify(actual)}`);
    // Every AttachRequested is closed by Attached or AttachFailed, next in the stream; failures only for refused attaches.
    const refusedAttaches = ops.filter((o) => o.op === 'attach' && o.status !== 200).length;
    let failed = 0;
    events.forEach((e, i) => {
      if (e.type === 'StorageImageAttachRequested') {
        counts.attachRequested += 1;
        const next = events[i + 1];
        if (!next || !['StorageImageAttached', 'StorageImageAttachFailed'].includes(next.type)) problems.push(`image ${id} v${e.version}: AttachRequested not closed (${next?.type})`);
      }
      if (e.type === 'StorageImageAttachFailed') failed += 1;
      if (e.type === 'StorageImageDetached' && e.cause.kind !== 'user' && !(e.cause.kind === 'system' && e.cause.reason === 'vm-stopped')) {
        problems.push(`image ${id} v${e.version}: Detached by ${JSON.stringify(e.cause)}`);
      }
      if (e.type === 'StorageImageAttached' && (e.data as { mode?: string }).mode !== 'hot') problems.push(`image ${id}: boot attach under load`);
      // The disk-file reaction's outcome of a revoke comes only after it.
      if (e.type === 'StorageImageDiskFileRemoved' && events[i - 1]?.type !== 'StorageImageRevoked') problems.push(`image ${id} v${e.version}: DiskFileRemoved not after Revoked`);
      if (!['StorageImageCreated', 'StorageImageDiskReady', 'StorageImageAttachRequested', 'StorageImageAttached', 'StorageImageAttachFailed', 'StorageImageDetached', 'StorageImageRevoked', 'StorageImageDiskFileRemoved'].includes(e.type)) {
        problems.push(`image ${id}: unexpected ${e.type}`);
      }
    });
    if (failed > refusedAttaches) problems.push(`image ${id}: ${failed} AttachFailed for ${refusedAttaches} refused attaches`);
    // Every Attached is undone by a Detached (the user's, or the system's for a stopped VM) before anything else happens to it.
    events.forEach((e, i) => {
      if (e.type !== 'StorageImageAttached') return;
      const next = events.slice(i + 1).find((later) => ['StorageImageDetached', 'StorageImageRevoked', 'StorageImageAttachRequested'].includes(later.type));
      if (next && next.type !== 'StorageImageDetached') problems.push(`image ${id} v${e.version}: Attached, then ${next.type} without a Detached`);
    });
    if (events.filter((e) => e.type === 'StorageImageDiskReady').length !== 1) problems.push(`image ${id}: DiskReady not exactly once`);
    counts.created += events.filter((e) => e.type === 'StorageImageCreated').length;
    counts.attached += events.filter((e) => e.type === 'StorageImageAttached').length;
    counts.attachFailed += failed;
    counts.detachedByUser += events.filter((e) => e.type === 'StorageImageDetached' && e.cause.kind === 'user').length;
    counts.detachedBySystem += events.filter((e) => e.type === 'StorageImageDetached' && e.cause.kind === 'system').length;
    counts.revoked += events.filter((e) => e.type === 'StorageImageRevoked').length;
    counts.ready += events.filter((e) => e.type === 'StorageImageDiskReady').length;
  }
  expect(problems).toEqual([]);
  const ok = (op: Op) => outcomes.filter((o) => o.op === op && o.status >= 200 && o.status < 300).length;
  expect(counts.created).toBe(ok('create'));
  expect(counts.attached).toBe(ok('attach'));
  expect(counts.detachedByUser).toBe(ok('detach'));
  expect(counts.revoked).toBe(ok('revoke'));
  expect(counts.attachRequested).toBe(counts.attached + counts.attachFailed);

  // The records agree with themselves, the log, a rebuild, and the hosts.
  expect(contiguityProblems(streams)).toEqual([]);
  const vmIds = Array.from({ length: VMS }, (_, i) => VM0 + i);
  expect(await deviceProblems(stack, streams, vmIds)).toEqual([]);
  const live = await readModelProblems(stack, streams);
  expect(live.problems).toEqual([]);
  const { container } = stack;
  const report = await rebuildImages({
    client: container.dynamo,
    doc: documentClient(container.dynamo),
    prefix: container.config.tablePrefix,
    events: container.deps.events,
    locator: container.readModelLocator,
    catchUpDelayMs: 0,
  });
  expect(report.events).toBe(counts.events);
  const rebuilt = await readModelProblems(stack, streams); // the switched-to table
  expect(rebuilt.problems).toEqual([]);
  for (const vmId of vmIds) {
    const vm = await container.deps.vms.get(vmId);
    if (vm?.state !== 'running') continue;
    const onHost = await container.deps.hypervisor.listDisks({ hostId: vm.hostId!, domain: vm.domain! });
    expect(`${vmId}: ${onHost.map((d) => d.dev).sort().join(',')}`).toBe(`${vmId}: ${Object.keys(vm.devices).sort().join(',')}`);
  }

  Object.assign(figures, { seed: SEED, elapsedSeconds: elapsed, counts, rebuild: { from: report.from, to: report.to, images: report.images }, readModelRows: live.rows });

  // The attaches the load is about happened: every attacher with its disk in time tried one.
  expect([...readyEarly].filter((vu) => !triedAttach.has(vu))).toEqual([]);
  expect(readyEarly.size).toBeGreaterThan(0);
  // Every refused attach has its cause: its VM was stopped during the request (the chaos
  // loop), or the host was unavailable (a deliberate 503). Anything else is a refusal the
  // load does not explain: a device race lost, a conflict surfaced, a state mix-up.
  const attaches = outcomes.filter((o) => o.op === 'attach');
  const vmOf = (o: Outcome) => VM0 + (o.vu % VMS);
  const vmStoppedDuring = (o: Outcome) => stoppedWindows.some((w) => w.vmId === vmOf(o) && w.from <= o.answered && w.to >= o.sent);
  const unexplained = attaches.filter(
    (o) => o.status !== 200 && !(o.status === 409 && o.code === 'storage_image_attach' && vmStoppedDuring(o)) && !(o.status === 503 && o.code === 'hypervisor_unavailable'),
  );
  expect(unexplained.map((o) => `vu ${o.vu} image ${o.imageId}: ${o.status} ${o.code} (${o.answered - o.sent} ms)`)).toEqual([]);
  // Refusals are the exception: one VM of 20 is stopped a fifth of the time, and the host is sized for this load.
  expect({ attaches: attaches.length, succeeded: ok('attach') >= attaches.length / 2 }).toEqual({ attaches: attaches.length, succeeded: true });
});
