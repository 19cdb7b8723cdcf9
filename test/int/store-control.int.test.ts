/**
 * Device claims, the VM directory and the quota ledger against DynamoDB Local: claims and
 * quota entries are written only inside a command step's transaction (commit effects).
 */
import { checkQuotaLedgers, countRequests, documentClient, DynamoEventStore, fixedImagesTable } from '../../adapters/dynamodb';
import { createImage, revokeImage } from '../../application/storageImages';
import { ConcurrencyError, DeviceClaimError, type ImageView, type StepEffects, type VmStateChange } from '../../application/storePorts';
import { handleCommand } from '../../application/commandHandling';
import { DomainError } from '../../domain/errors';
import { evolve, streamIdOf, type NewEvent } from '../../domain/storageImage';
import { appendStream, at, created, diskReady, serviceDeps, useTestDynamo } from '../support/dynamo';

jest.setTimeout(120_000);
const dynamo = useTestDynamo();
const MAX = 10;
const USER = 5;
const DEVICES = ['vdb', 'vdc', 'vdd', 'vde', 'vdf', 'vdg', 'vdh', 'vdi', 'vdj', 'vdk', 'vdl', 'vdm', 'vdn', 'vdo', 'vdp', 'vdq'];

let nextImage = 1000;
/** A ready image of `userId`, as the application leaves it after create + disk file. */
const readyImage = async (userId = USER): Promise<number> => {
  const id = nextImage++;
  await appendStream(dynamo().stores, id, [created(id, userId), diskReady(userId)]);
  return id;
};

const requested = (vmId: number, diskDev: string, attachId: string): NewEvent => ({
  type: 'StorageImageAttachRequested',
  data: { vmId, diskDev, attachId },
  time: at(10),
  cause: { kind: 'user', userId: USER },
});

/** One attach-intent step of `imageId`: AttachRequested and the claim, as hotAttach.ts commits them. */
const claim = async (imageId: number, vmId: number, dev: string, options: { userId?: number; max?: number } = {}) => {
  const { events } = dynamo().stores;
  const loaded = await events.load(streamIdOf(imageId));
  const attachId = `${streamIdOf(imageId)}@${loaded.version + 1}`;
  const event = requested(vmId, dev, attachId);
  await events.commit([{ streamId: streamIdOf(imageId), expectedVersion: loaded.version, event, stateAfter: evolve(loaded.state, event) }], {
    claims: [{ vmId, userId: options.userId ?? USER, dev, imageId, attachId, maxDevices: options.max ?? MAX }],
  });
  return attachId;
};

/** A step of `imageId` that releases `dev` for `attachId` (as an AttachFailed would). */
const release = async (imageId: number, vmId: number, dev: string, attachId: string) => {
  const { events } = dynamo().stores;
  const loaded = await events.load(streamIdOf(imageId));
  const event: NewEvent = { type: 'StorageImageAttachFailed', data: { vmId, diskDev: dev, reason: 'test', attachId }, time: at(11), cause: { kind: 'system', reason: 'reconciled' } };
  const effects: StepEffects = { releases: [{ vmId, dev, attachId }] };
  await events.commit([{ streamId: streamIdOf(imageId), expectedVersion: loaded.version, event, stateAfter: evolve(loaded.state, event) }], effects);
};

const reasonOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof DeviceClaimError ? e.reason : e instanceof ConcurrencyError ? 'concurrency' : String(e)),
  );

describe('device claims (committed with the event)', () => {
  it('40 images racing for devices of one VM: no device twice, never more than 10, the rest full', async () => {
    const { stores } = dynamo();
    const vmId = 100;
    const ids = await Promise.all(Array.from({ length: 40 }, () => readyImage()));
    // Each attach as the application does it: read the VM, pick the first free device, commit; on 'taken' read again.
    const attach = async (imageId: number): Promise<string> => {
      for (let attempt = 0; attempt < 60; attempt++) {
        const vm = await stores.vms.get(vmId);
        const held = new Set(Object.keys(vm?.devices ?? {}));
        const dev = DEVICES.find((d) => !held.has(d))!;
        const outcome = await reasonOf(claim(imageId, vmId, dev));
        if (outcome === 'ok') return dev;
        if (outcome !== 'taken') return outcome;
      }
      return 'gave up';
    };
    const outcomes = await Promise.all(ids.map(attach));
    const devs = outcomes.filter((o) => o.startsWith('vd'));
    expect(devs).toHaveLength(MAX);
    expect(new Set(devs).size).toBe(MAX);
    expect(outcomes.filter((o) => o === 'full')).toHaveLength(30);
    const record = await stores.vms.get(vmId);
    expect(Object.keys(record!.devices).sort()).toEqual([...devs].sort());
    // Each device held by the attach whose stream recorded it, and only the winners' streams moved.
    for (const [dev, c] of Object.entries(record!.devices)) {
      const { state } = await stores.events.load(streamIdOf(c.imageId));
      expect(state.status === 'ok' && state.attachment).toMatchObject({ phase: 'attaching', vmId, diskDev: dev, attachId: c.attachId });
    }
    const moved = await Promise.all(ids.map(async (id) => (await stores.events.load(streamIdOf(id))).version));
    expect(moved.filter((v) => v === 3)).toHaveLength(MAX);
    expect(record!.userId).toBe(USER);
  });

  it('the first claim creates the VM record, in the one TransactWriteItems of the step', async () => {
    const { local, prefix, stores } = dynamo();
    const id = await readyImage();
    const client = local.newClient();
    const counter = countRequests(client);
    const store = new DynamoEventStore(documentClient(client), `${prefix}-events`, `${prefix}-control`, fixedImagesTable(stores.names.imagesV1));
    const loaded = await stores.events.load(streamIdOf(id));
    const event = requested(200, 'vdb', `${streamIdOf(id)}@3`);
    await store.commit([{ streamId: streamIdOf(id), expectedVersion: 2, event, stateAfter: evolve(loaded.state, event) }], {
      claims: [{ vmId: 200, userId: USER, dev: 'vdb', imageId: id, attachId: `${streamIdOf(id)}@3`, maxDevices: MAX }],
    });
    expect(counter.snapshot()).toEqual({ TransactWriteItems: expect.objectContaining({ requests: 1 }) });
    expect(await stores.vms.get(200)).toEqual({ vmId: 200, userId: USER, devices: { vdb: { imageId: id, attachId: `${streamIdOf(id)}@3`, since: at(10) } } });
  });

  it('taken for another attach (even of the same image), other_owner for another user; a refusal writes nothing', async () => {
    const { stores } = dynamo();
    const [a, b] = [await readyImage(), await readyImage()];
    const held = await claim(a, 201, 'vdb');
    expect(await reasonOf(claim(b, 201, 'vdb'))).toBe('taken');
    const other = await readyImage(6);
    expect(await reasonOf(claim(other, 201, 'vdc', { userId: 6 }))).toBe('other_owner');
    expect((await stores.vms.get(201))!.devices).toEqual({ vdb: { imageId: a, attachId: held, since: at(10) } });
    expect((await stores.events.load(streamIdOf(b))).version).toBe(2);
    expect((await stores.events.load(streamIdOf(other))).version).toBe(2);
  });

  it('six concurrent claims of six devices by six images of one VM with room for 3: three win, each device once', async () => {
    const { stores } = dynamo();
    const ids = await Promise.all(Array.from({ length: 6 }, () => readyImage()));
    const outcomes = await Promise.all(ids.map((id, i) => reasonOf(claim(id, 205, DEVICES[i]!, { max: 3 }))));
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(3);
    for (const o of outcomes) expect(['ok', 'full', 'taken']).toContain(o); // 'taken': a concurrent winner held the item
    const devices = (await stores.vms.get(205))!.devices;
    expect(Object.keys(devices)).toHaveLength(3);
    expect(new Set(Object.values(devices).map((c) => c.imageId)).size).toBe(3);
  });

  it('full when the VM holds the maximum, even for a free device name', async () => {
    const ids = [await readyImage(), await readyImage(), await readyImage()];
    await claim(ids[0]!, 202, 'vdb', { max: 2 });
    await claim(ids[1]!, 202, 'vdc', { max: 2 });
    expect(await reasonOf(claim(ids[2]!, 202, 'vdd', { max: 2 }))).toBe('full');
  });

  it('only the holding attach releases: another attachId or a free device is not_held and writes nothing', async () => {
    const { stores } = dynamo();
    const [a, b] = [await readyImage(), await readyImage()];
    const held = await claim(a, 203, 'vdb', { max: 1 });
    expect(await reasonOf(release(a, 203, 'vdb', `${streamIdOf(a)}@99`))).toBe('not_held');
    expect(await reasonOf(release(b, 203, 'vdb', held))).toBe('ok'); // the attachId is what counts, not the stream
    const again = await claim(b, 203, 'vdb', { max: 1 });
    expect(await reasonOf(release(a, 203, 'vdz', held))).toBe('not_held');
    expect(await reasonOf(release(a, 203, 'vdb', held))).toBe('not_held'); // b's attach holds it now
    expect((await stores.vms.get(203))!.devices).toEqual({ vdb: { imageId: b, attachId: again, since: at(10) } });
    expect(await reasonOf(release(b, 203, 'vdb', again))).toBe('ok');
    expect((await stores.vms.get(203))!.devices).toEqual({});
  });
});

describe('VM state records', () => {
  const change = (state: 'running' | 'stopped', seconds: number, hostId = 'i-0abc', reason?: string): VmStateChange => ({
    vmId: 300,
    userId: USER,
    domain: 'vm-300-5',
    hostId,
    state,
    time: at(seconds),
    ...(reason ? { reason } : {}),
  });

  it('applies each event once and the newest wins, whichever host sent it; a migrated stop never stops the VM, and the host it left stops nothing', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    const r1 = await vms.recordState(change('running', 10));
    expect(r1.applied).toBe(true);
    expect(r1.record).toMatchObject({ vmId: 300, userId: USER, state: 'running', hostId: 'i-0abc', domain: 'vm-300-5', stateTime: at(10) });
    expect(await vms.recordState(change('running', 10))).toEqual({ applied: false, record: r1.record });
    // Migrated to mi-0def at 20: the old host's stop never marks the VM stopped...
    expect((await vms.recordState(change('stopped', 20, 'i-0abc', 'migrated'))).applied).toBe(false);
    // ...and no later stop from the host it left counts.
    expect((await vms.recordState(change('stopped', 21, 'i-0abc'))).applied).toBe(false);
    // The new host's stop, delivered before that host's own `running`, counts: it is the newest.
    const stopped = await vms.recordState(change('stopped', 30, 'mi-0def'));
    expect(stopped).toMatchObject({ applied: true, record: { state: 'stopped', hostId: 'mi-0def', stateTime: at(30) } });
    const late = await vms.recordState(change('running', 25, 'mi-0def'));
    expect(late.applied).toBe(false);
    expect(late.record).toMatchObject({ state: 'stopped', hostId: 'mi-0def', stateTime: at(30), stopReason: 'stopped' });
    // The same time written another way is the same event.
    expect((await vms.recordState({ ...change('stopped', 30, 'mi-0def'), time: at(30).replace('.000Z', 'Z') })).applied).toBe(false);
    // Back on the first host: its stops count again, and the late migrated stop of 20 changes nothing.
    expect((await vms.recordState(change('running', 40))).applied).toBe(true);
    expect((await vms.recordState(change('stopped', 20, 'i-0abc', 'migrated'))).applied).toBe(false);
    expect((await vms.recordState(change('stopped', 41))).record).toMatchObject({ state: 'stopped', hostId: 'i-0abc', stateTime: at(41) });
  });

  it('concurrent redeliveries and reorderings: applied at most once per time, final state the newest', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    const deliveries = [5, 1, 3, 5, 2, 4, 5, 1, 3].map((s) => ({ ...change(s % 2 ? 'running' : 'stopped', 100 + s), vmId: 301 }));
    const results = await Promise.all(deliveries.map((d) => vms.recordState(d)));
    const appliedTimes = deliveries.filter((_, i) => results[i]!.applied).map((d) => d.time);
    expect(new Set(appliedTimes).size).toBe(appliedTimes.length);
    expect(appliedTimes).toContain(at(105));
    expect(await vms.get(301)).toMatchObject({ state: 'running', stateTime: at(105) });
    for (const d of deliveries) expect((await vms.recordState(d)).applied).toBe(false);
  });

  it('keeps device claims when a state event arrives, and a boot-time claim before any state event', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    const id = await readyImage();
    const attachId = await claim(id, 302, 'hdb');
    await vms.recordState({ ...change('running', 30), vmId: 302, domain: 'vm-302-5' });
    expect(await vms.get(302)).toEqual({
      vmId: 302,
      userId: USER,
      hostId: 'i-0abc',
      domain: 'vm-302-5',
      state: 'running',
      stateTime: at(30),
      devices: { hdb: { imageId: id, attachId, since: at(10) } },
    });
    const all = await vms.list();
    expect(all.map((v) => v.vmId)).toEqual(expect.arrayContaining([100, 200, 300, 301, 302]));
  });
});

/** The disk file was made (the disk-file reaction's step): only a ready image can be revoked. */
const markReady = (deps: ReturnType<typeof serviceDeps>, ids: number[]) =>
  Promise.all(ids.map((id) => handleCommand(deps, id, { type: 'MarkDiskReady', storage: 'default' }, { actor: { kind: 'system', reason: 'disk-file' }, now: at(1) })));

describe('quota ledger (entries committed with Created and Revoked)', () => {
  const QUOTA_USER = 50;
  const actor = { kind: 'user' as const, userId: QUOTA_USER };
  const input = (i: number) => ({ name: `q${i}`, description: '', diskController: 'virtio' as const, filesystem: 'raw' as const, sizeMb: 100 });

  it('30 concurrent creates of 100 MB under a 1000 MB limit: exactly 10 succeed; then revokes and creates race, the ledger always equals the log', async () => {
    const { stores } = dynamo();
    const deps = serviceDeps(stores, { defaultQuotaMb: 1000 });
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => createImage(deps, input(i), actor)));
    const made = results.filter((r): r is PromiseFulfilledResult<ImageView> => r.status === 'fulfilled').map((r) => r.value.id);
    expect(made).toHaveLength(10);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as DomainError).code).toBe('user_storage_limit');
    expect(await stores.quota.usedMb(QUOTA_USER)).toBe(1000);
    expect(await checkQuotaLedgers(stores.events, stores.quota)).toEqual([]);
    // Rounds: revoke 4 while 8 creates race for the room they free.
    await markReady(deps, made);
    let live = [...made];
    for (let round = 0; round < 3; round++) {
      const revoking = live.slice(0, 4);
      const outcomes = await Promise.allSettled([
        ...revoking.map((id) => revokeImage(deps, id, actor)),
        ...Array.from({ length: 8 }, (_, i) => createImage(deps, input(100 + round * 10 + i), actor)),
      ]);
      expect(outcomes.slice(0, 4).every((o) => o.status === 'fulfilled')).toBe(true);
      const created = outcomes.slice(4).filter((o): o is PromiseFulfilledResult<ImageView> => o.status === 'fulfilled').map((o) => o.value.id);
      await markReady(deps, created);
      live = [...live.slice(4), ...created];
      // Never over the limit; and exactly the live images, as the log says.
      expect(live.length).toBeLessThanOrEqual(10);
      expect(await stores.quota.usedMb(QUOTA_USER)).toBe(100 * live.length);
      expect(await checkQuotaLedgers(stores.events, stores.quota)).toEqual([]);
    }
    expect((await stores.quota.entry(QUOTA_USER)).images).toEqual(Object.fromEntries(live.map((id) => [id, 100])));
  });

  it('a size above the limit is refused by the transaction condition, writing nothing; a revoke gives the room back', async () => {
    const { stores, local } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client);
    const store = new DynamoEventStore(documentClient(client), stores.names.events, stores.names.control, fixedImagesTable(stores.names.imagesV1));
    const event = created(900, 52, 2000);
    await expect(
      store.commit([{ streamId: streamIdOf(900), expectedVersion: 0, event, stateAfter: evolve({ status: 'none' }, event) }], {
        quota: { reserve: { userId: 52, imageId: 900, sizeMb: 2000, limitMb: 1000 } },
      }),
    ).rejects.toThrow(/uses 0 MB of 1000 MB/);
    expect(counter.count()).toBe(1); // refused by the transaction's condition: nothing written
    const deps = serviceDeps(stores, { defaultQuotaMb: 1000 });
    const a = await createImage(deps, { ...input(1), sizeMb: 600 }, { kind: 'user', userId: 52 });
    await markReady(deps, [a.id]);
    await expect(createImage(deps, { ...input(2), sizeMb: 500 }, { kind: 'user', userId: 52 })).rejects.toMatchObject({ code: 'user_storage_limit' });
    await revokeImage(deps, a.id, { kind: 'user', userId: 52 });
    await revokeImage(deps, a.id, { kind: 'user', userId: 52 }); // twice: no second release
    expect(await stores.quota.usedMb(52)).toBe(0);
    const b = await createImage(deps, { ...input(3), sizeMb: 500 }, { kind: 'user', userId: 52 });
    expect(await stores.quota.entry(52)).toEqual({ userId: 52, usedMb: 500, images: { [b.id]: 500 } });
  });
});
