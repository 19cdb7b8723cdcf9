/**
 * The holes of issue 11, each pinned through the real application workflows over the
 * real DynamoDB Local stores (one TransactWriteItems per command step). The hosts are
 * fakes that do what they are asked: the store is what is tested here.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createDynamoStores, rebuildImages, checkQuotaLedgers, type DynamoStores } from '../../adapters/dynamodb';
import { handleCommand } from '../../application/commandHandling';
import { attachAtBoot, attachImage, createImage, editImage, listImages, onVmStateChange, type ServiceDeps } from '../../application/storageImages';
import type { StoredEvent } from '../../application/storePorts';
import { DomainError } from '../../domain/errors';
import { streamIdOf } from '../../domain/storageImage';
import { serviceDeps, useTestDynamo } from '../support/dynamo';

jest.setTimeout(120_000);
const dynamo = useTestDynamo({ readModelTtlMs: 100 });

const USER = 41;
const H1 = 'i-0000000000000h1';
const H2 = 'i-0000000000000h2';
const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const t = (s: number) => new Date(T0 + s * 1000).toISOString();
const user = (userId = USER) => ({ kind: 'user' as const, userId });
const input = (name: string, sizeMb = 10) => ({ name, description: '', diskController: 'virtio' as const, filesystem: 'raw' as const, sizeMb });

/** A ready image (create, then the disk-file reaction's step). */
const readyImage = async (deps: ServiceDeps, userId = USER): Promise<number> => {
  const view = await createImage(deps, input(`img-${Math.random().toString(36).slice(2, 8)}`), user(userId));
  await handleCommand(deps, view.id, { type: 'MarkDiskReady', storage: 'default' }, { actor: { kind: 'system', reason: 'disk-file' }, now: t(0) });
  return view.id;
};

const vmState = (vmId: number, state: 'running' | 'stopped', hostId: string, seconds: number, reason?: string) => ({
  vmId,
  userId: USER,
  domain: `vm-${vmId}-${USER}`,
  hostId,
  state,
  time: t(seconds),
  ...(reason ? { reason } : {}),
});

const attachmentOf = async (deps: ServiceDeps, imageId: number) => {
  const { state } = await deps.events.load(streamIdOf(imageId));
  return state.status === 'ok' ? state.attachment : null;
};

test('an ambiguous transaction (applied, answer lost, SDK retry with the same token): one image, quota counted once', async () => {
  const { local, prefix } = dynamo();
  const client = local.newClient();
  let lost = 0;
  // Below the SDK's retry: the first TransactWriteItems reaches the server, then its answer is "lost".
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'TransactWriteItemsCommand' && lost === 0) {
        lost++;
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET', $metadata: {} });
      }
      return result;
    },
    { step: 'deserialize', name: 'loseFirstTransactAnswer' },
  );
  const stores = createDynamoStores({ client, prefix, idBlockSize: 1 });
  const deps = serviceDeps(stores, { defaultQuotaMb: 1000 });
  const view = await createImage(deps, input('ambiguous', 300), user(42));
  expect(lost).toBe(1); // the fault did fire, and the create still succeeded
  expect((await stores.events.readStream(streamIdOf(view.id))).events.map((e) => e.type)).toEqual(['StorageImageCreated']);
  expect((await listImages(deps, 42, { limit: 10 })).items.map((v) => v.id)).toEqual([view.id]);
  expect(await stores.quota.entry(42)).toEqual({ userId: 42, usedMb: 300, images: { [view.id]: 300 } });
  expect(await checkQuotaLedgers(stores.events, stores.quota)).toEqual([]);
});

test('six concurrent hot attaches of A: one wins, only its claim stays; B gets the next device; the VM stop detaches both', async () => {
  const deps = serviceDeps(dynamo().stores);
  const V = 501;
  await deps.vms.recordState(vmState(V, 'running', H1, 0));
  const A = await readyImage(deps);
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => attachImage(deps, A, V, user())));
  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  const a = await attachmentOf(deps, A);
  expect(a).toMatchObject({ phase: 'attached', vmId: V });
  // The losers freed nothing that was A's: the one claim is A's, held by A's attach.
  const vm = await deps.vms.get(V);
  expect(vm!.devices).toEqual({ [a!.diskDev]: expect.objectContaining({ imageId: A, attachId: a!.attachId }) });

  const B = await readyImage(deps);
  const b = await attachImage(deps, B, V, user());
  expect(a!.diskDev).toBe('vdb');
  expect(b.diskDev).toBe('vdc');

  const stop = await onVmStateChange(deps, vmState(V, 'stopped', H1, 10));
  expect(stop.detached.sort()).toEqual([A, B].sort());
  expect(await attachmentOf(deps, A)).toBeNull();
  expect(await attachmentOf(deps, B)).toBeNull();
  expect((await deps.vms.get(V))!.devices).toEqual({});
});

describe('a migration, in both arrival orders', () => {
  const orders: Array<[string, (vmId: number) => Parameters<typeof onVmStateChange>[1][]]> = [
    ['stop(migrated, H1, t2) first, then running(H2, t1)', (vm) => [vmState(vm, 'stopped', H1, 2, 'migrated'), vmState(vm, 'running', H2, 1)]],
    ['running(H2, t1) first, then stop(migrated, H1, t2)', (vm) => [vmState(vm, 'running', H2, 1), vmState(vm, 'stopped', H1, 2, 'migrated')]],
  ];
  it.each(orders.map(([name, events], i) => [name, events, 600 + i] as const))('%s: V runs on H2 and takes a hot attach', async (_name, events, V) => {
    const deps = serviceDeps(dynamo().stores);
    const kept = await readyImage(deps);
    await deps.vms.recordState(vmState(V, 'running', H1, 0));
    await attachImage(deps, kept, V, user());
    for (const change of events(V)) await onVmStateChange(deps, change);
    expect(await deps.vms.get(V)).toMatchObject({ state: 'running', hostId: H2 });
    expect(await attachmentOf(deps, kept)).toMatchObject({ phase: 'attached', vmId: V }); // a migration keeps the disks
    const img = await readyImage(deps);
    expect(await attachImage(deps, img, V, user())).toMatchObject({ vmId: V });
    expect(deps.hypervisor.attached.size).toBeGreaterThan(0);
    // The old host's plain stop, even newer, changes nothing: V is recorded on H2.
    expect(await onVmStateChange(deps, vmState(V, 'stopped', H1, 3))).toEqual({ applied: false, detached: [] });
    expect(await deps.vms.get(V)).toMatchObject({ state: 'running', hostId: H2 });
    expect(await attachmentOf(deps, img)).toMatchObject({ phase: 'attached', vmId: V });
  });
});

describe('boot-time attach refused midway leaves nothing attached', () => {
  const stoppedVm = async (deps: ServiceDeps, V: number) => {
    await deps.vms.recordState(vmState(V, 'running', H1, 0));
    await deps.vms.recordState(vmState(V, 'stopped', H1, 1));
  };
  const nothingAttached = async (deps: ServiceDeps, V: number, ids: number[]) => {
    for (const id of ids) expect(await attachmentOf(deps, id)).toBeNull();
    expect((await deps.vms.get(V))?.devices ?? {}).toEqual({});
  };

  it('img3 is another user’s', async () => {
    const deps = serviceDeps(dynamo().stores);
    const V = 701;
    await stoppedVm(deps, V);
    const ids = [await readyImage(deps), await readyImage(deps), await readyImage(deps, USER + 1)];
    await expect(attachAtBoot(deps, V, USER, ids, { kind: 'portal', userId: USER })).rejects.toMatchObject({ code: 'image_permission' });
    await nothingAttached(deps, V, ids);
  });

  it('img3 would not fit: the VM takes two', async () => {
    const deps = serviceDeps(dynamo().stores, { maxDisksPerVm: 2 });
    const V = 702;
    await stoppedVm(deps, V);
    const ids = [await readyImage(deps), await readyImage(deps), await readyImage(deps)];
    await expect(attachAtBoot(deps, V, USER, ids, { kind: 'portal', userId: USER })).rejects.toMatchObject({ code: 'storage_image_attach' });
    await nothingAttached(deps, V, ids);
  });

  it('img3 is attached to another VM', async () => {
    const deps = serviceDeps(dynamo().stores);
    const [V, W] = [703, 704];
    await stoppedVm(deps, V);
    await stoppedVm(deps, W);
    const ids = [await readyImage(deps), await readyImage(deps), await readyImage(deps)];
    await attachAtBoot(deps, W, USER, [ids[2]!], { kind: 'portal', userId: USER });
    await expect(attachAtBoot(deps, V, USER, ids, { kind: 'portal', userId: USER })).rejects.toBeInstanceOf(DomainError);
    for (const id of ids.slice(0, 2)) expect(await attachmentOf(deps, id)).toBeNull();
    expect((await deps.vms.get(V))!.devices).toEqual({});
    expect(await attachmentOf(deps, ids[2]!)).toMatchObject({ vmId: W }); // untouched
  });
});

test('a rebuild while writes go on: every image at its head version in the new table; lists read during it miss nothing', async () => {
  const { local, prefix, stores } = dynamo();
  // The writer is another process (its own client and locator cache, TTL 100 ms), as a Lambda would be.
  const writerStores: DynamoStores = createDynamoStores({ client: local.newClient(), prefix, idBlockSize: 1, readModelTtlMs: 100 });
  const deps = serviceDeps(writerStores, { defaultQuotaMb: 1e9 });
  const W = 77;
  let done = false;
  const created: number[] = [];
  const missed: string[] = [];
  // The writer's rounds (a create, every third an edit, a full list), and the rebuild's
  // phase each list was read in (from the rebuild's log lines).
  let phase: 'before' | 'filling' | 'switched' = 'before';
  const listsIn = { before: 0, filling: 0, switched: 0 };
  let rounds = 0;
  let failed = false;
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  /** Resolves once the writer has done `n` rounds in all (or failed: `await writer` then throws). */
  const roundsDone = (n: number) => new Promise<void>((ok) => { const check = () => (rounds >= n || failed ? ok() : waiters.push(check)); check(); });
  const writer = (async () => {
    for (let i = 0; !done || i < 5; i++) {
      const view = await createImage(deps, input(`rb-${i}`), user(W));
      created.push(view.id);
      if (i % 3 === 1) await editImage(deps, created[i - 1]!, { name: `rb-${i - 1}-edited` }, user(W));
      // Read-your-writes: a list shows every image created before it.
      const listed = new Set<number>();
      let token: string | undefined;
      do {
        const page = await listImages(deps, W, { limit: 1000, nextToken: token });
        for (const v of page.items) listed.add(v.id);
        token = page.nextToken;
      } while (token);
      for (const id of created) if (!listed.has(id)) missed.push(`list ${i} (${phase}): image ${id}`);
      listsIn[phase]++;
      rounds++;
      wake();
    }
  })().catch((error: unknown) => {
    failed = true;
    wake();
    throw error;
  });
  // The interleaving is forced, not left to timing: some writes before the rebuild starts,
  // and three more rounds while writes go to both tables, before the replay reads the log.
  await roundsDone(3);
  const gatedEvents = {
    scanAll: async function* (...args: Parameters<typeof stores.events.scanAll>) {
      await roundsDone(rounds + 3);
      yield* stores.events.scanAll(...args);
    },
  };
  const log = (line: string) => {
    if (line.startsWith('writes now go to')) phase = 'filling';
    if (line.startsWith('switched')) phase = 'switched';
  };
  const report = await rebuildImages({ client: local.client, doc: stores.doc, prefix, events: gatedEvents, locator: stores.locator, catchUpDelayMs: 300, log });
  done = true;
  await writer;
  expect(listsIn.before).toBeGreaterThanOrEqual(3);
  expect(listsIn.filling).toBeGreaterThanOrEqual(3);
  expect(missed).toEqual([]);
  // Every image of the log has its row in the new table, at its head version.
  const heads = new Map<string, StoredEvent>();
  for await (const page of stores.events.scanAll()) for (const e of page) if ((heads.get(e.streamId)?.version ?? 0) < e.version) heads.set(e.streamId, e);
  const rows = new Map<number, number>();
  let start: Record<string, unknown> | undefined;
  do {
    const out = await stores.doc.send(new ScanCommand({ TableName: report.to, ConsistentRead: true, ExclusiveStartKey: start }));
    for (const r of out.Items ?? []) rows.set(r.id as number, r.version as number);
    start = out.LastEvaluatedKey;
  } while (start);
  const wrong = [...heads.values()].filter((e) => e.stateAfter.status !== 'none').filter((e) => rows.get(Number(e.streamId.slice('image-'.length))) !== e.version);
  expect(wrong.map((e) => `${e.streamId}@${e.version} row ${rows.get(Number(e.streamId.slice(6)))}`)).toEqual([]);
  for (const id of created) expect(heads.has(streamIdOf(id))).toBe(true);
  // Reads now name the new table: the pointer, read afresh (the writer's cache may hold the old name for its TTL).
  expect((await writerStores.locator.pointer())?.table).toBe(report.to);
});
