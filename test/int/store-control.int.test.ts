/** Device claims, the VM directory and the quota ledger, against a real dynalite server. */
import { DynamoQuotaLedger, DynamoVmDirectory, countRequests, documentClient } from '../../adapters/dynamodb';
import type { VmStateChange } from '../../application/storePorts';
import { at, useTestDynamo } from '../support/dynamo';

jest.setTimeout(60_000);
const dynamo = useTestDynamo();
const MAX = 10;
const DEVICES = ['vdb', 'vdc', 'vdd', 'vde', 'vdf', 'vdg', 'vdh', 'vdi', 'vdj', 'vdk', 'vdl', 'vdm', 'vdn', 'vdo', 'vdp', 'vdq'];

describe('device claims', () => {
  it('40 images racing for devices of one VM: no device twice, never more than 10, the rest full', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    const vmId = 100;
    // Each attach as the application does it: read the VM, pick the first free device, claim; retry on 'taken'.
    const attach = async (imageId: number): Promise<string> => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const vm = await vms.get(vmId);
        const held = new Set(Object.keys(vm?.devices ?? {}));
        const dev = DEVICES.find((d) => !held.has(d));
        if (!dev) return 'full';
        const result = await vms.claimDevice(vmId, 5, dev, imageId, MAX, at(0));
        if (result.ok) return dev;
        if (result.reason !== 'taken') return result.reason;
      }
      return 'gave up';
    };
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => attach(1000 + i)));
    const devs = outcomes.filter((o) => o.startsWith('vd'));
    expect(devs).toHaveLength(MAX);
    expect(new Set(devs).size).toBe(MAX);
    expect(outcomes.filter((o) => o === 'full')).toHaveLength(30);
    const record = await vms.get(vmId);
    expect(Object.keys(record!.devices)).toHaveLength(MAX);
    expect(new Set(Object.values(record!.devices).map((c) => c.imageId)).size).toBe(MAX);
    expect(record!.userId).toBe(5);
  });

  it('creates the VM record on the first claim, with one request', async () => {
    const { local, prefix } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client);
    const vms = new DynamoVmDirectory(documentClient(client), `${prefix}-control`);
    expect(await vms.claimDevice(200, 5, 'vdb', 1, MAX, at(0))).toEqual({ ok: true });
    expect(counter.count()).toBe(1);
    expect(await vms.get(200)).toEqual({ vmId: 200, userId: 5, devices: { vdb: { imageId: 1, since: at(0) } } });
  });

  it('is idempotent for the image holding the device; taken for another image; other_owner for another user', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    expect(await vms.claimDevice(201, 5, 'vdb', 1, MAX, at(0))).toEqual({ ok: true });
    expect(await vms.claimDevice(201, 5, 'vdb', 1, MAX, at(9))).toEqual({ ok: true });
    expect(await vms.claimDevice(201, 5, 'vdb', 2, MAX, at(0))).toEqual({ ok: false, reason: 'taken' });
    expect(await vms.claimDevice(201, 6, 'vdc', 3, MAX, at(0))).toEqual({ ok: false, reason: 'other_owner' });
    const record = await vms.get(201);
    expect(record!.devices).toEqual({ vdb: { imageId: 1, since: at(0) } });
  });

  it('full when the VM holds the maximum, even for a free device name; the holder of a device still gets ok', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    expect(await vms.claimDevice(202, 5, 'vdb', 1, 2, at(0))).toEqual({ ok: true });
    expect(await vms.claimDevice(202, 5, 'vdc', 2, 2, at(0))).toEqual({ ok: true });
    expect(await vms.claimDevice(202, 5, 'vdd', 3, 2, at(0))).toEqual({ ok: false, reason: 'full' });
    expect(await vms.claimDevice(202, 5, 'vdc', 2, 2, at(0))).toEqual({ ok: true });
  });

  it('release by another image changes nothing; release by the holder frees the device for another image', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    await vms.claimDevice(203, 5, 'vdb', 1, 1, at(0));
    await vms.releaseDevice(203, 'vdb', 2);
    await vms.releaseDevice(203, 'vdz', 1);
    expect((await vms.get(203))!.devices).toEqual({ vdb: { imageId: 1, since: at(0) } });
    expect(await vms.claimDevice(203, 5, 'vdc', 2, 1, at(0))).toEqual({ ok: false, reason: 'full' });
    await vms.releaseDevice(203, 'vdb', 1);
    await vms.releaseDevice(203, 'vdb', 1); // twice: no-op
    expect((await vms.get(203))!.devices).toEqual({});
    expect(await vms.claimDevice(203, 5, 'vdb', 2, 1, at(1))).toEqual({ ok: true });
    expect((await vms.get(203))!.devices).toEqual({ vdb: { imageId: 2, since: at(1) } });
  });
});

describe('VM state records', () => {
  const change = (state: 'running' | 'stopped', seconds: number, hostId = 'i-0abc'): VmStateChange => ({
    vmId: 300,
    userId: 5,
    domain: 'vm-300-5',
    hostId,
    state,
    time: at(seconds),
  });

  it('applies each event once and the newest wins, whatever the delivery order', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    const r1 = await vms.recordState(change('running', 10));
    expect(r1.applied).toBe(true);
    expect(r1.record).toMatchObject({ vmId: 300, userId: 5, state: 'running', hostId: 'i-0abc', domain: 'vm-300-5', stateTime: at(10) });
    // Redelivered: not applied, the record as it is.
    expect(await vms.recordState(change('running', 10))).toEqual({ applied: false, record: r1.record });
    // Newer stop on another host, then the older start arrives late.
    expect((await vms.recordState(change('stopped', 20, 'mi-0def'))).applied).toBe(true);
    const late = await vms.recordState(change('running', 15));
    expect(late.applied).toBe(false);
    expect(late.record).toMatchObject({ state: 'stopped', hostId: 'mi-0def', stateTime: at(20) });
    // Same instant written with other precision counts as the same time.
    expect((await vms.recordState({ ...change('running', 20), time: at(20).replace('.000Z', 'Z') })).applied).toBe(false);
  });

  it('concurrent redeliveries and reorderings: applied exactly once per newer time, final state the newest', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    const deliveries = [5, 1, 3, 5, 2, 4, 5, 1, 3].map((s) => ({ ...change(s % 2 ? 'running' : 'stopped', 100 + s), vmId: 301 }));
    const results = await Promise.all(deliveries.map((d) => vms.recordState(d)));
    // No time is applied twice (the redeliveries of 5, 1 and 3 at most once each).
    const appliedTimes = deliveries.filter((_, i) => results[i]!.applied).map((d) => d.time);
    expect(new Set(appliedTimes).size).toBe(appliedTimes.length);
    expect(appliedTimes).toContain(at(105));
    const record = await vms.get(301);
    expect(record).toMatchObject({ state: 'running', stateTime: at(105) });
    // Every later delivery is refused.
    for (const d of deliveries) expect((await vms.recordState(d)).applied).toBe(false);
  });

  it('keeps device claims when a state event arrives, and a boot-time claim before any state event', async () => {
    const { stores } = dynamo();
    const vms = stores.vms;
    await vms.claimDevice(302, 5, 'hdb', 9, MAX, at(0));
    await vms.recordState({ ...change('running', 30), vmId: 302, domain: 'vm-302-5' });
    expect(await vms.get(302)).toEqual({
      vmId: 302,
      userId: 5,
      hostId: 'i-0abc',
      domain: 'vm-302-5',
      state: 'running',
      stateTime: at(30),
      devices: { hdb: { imageId: 9, since: at(0) } },
    });
    await vms.recordState({ ...change('running', 1), vmId: 303, domain: 'vm-303-5' });
    expect(await vms.claimDevice(303, 5, 'vdb', 10, MAX, at(0))).toEqual({ ok: true });
    const all = await vms.list();
    expect(all.map((v) => v.vmId)).toEqual(expect.arrayContaining([100, 200, 300, 301, 302, 303]));
    expect(all.find((v) => v.vmId === 303)!.devices).toEqual({ vdb: { imageId: 10, since: at(0) } });
  });
});

describe('quota ledger', () => {
  it('concurrent reserves never exceed the limit', async () => {
    const { stores } = dynamo();
    const quota = stores.quota;
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => quota.reserve(50, 500 + i, 100, 1000)));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    for (const r of results) if (!r.ok) expect(r.usedMb).toBeLessThanOrEqual(1000);
    expect(await quota.usedMb(50)).toBe(1000);
  });

  it('mixed sizes racing: the sum of what was granted is what is used, and it is within the limit', async () => {
    const { stores } = dynamo();
    const quota = stores.quota;
    const sizes = Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 300));
    const results = await Promise.all(sizes.map((size, i) => quota.reserve(51, 600 + i, size, 2500)));
    const granted = sizes.filter((_, i) => results[i]!.ok).reduce((a, b) => a + b, 0);
    expect(granted).toBeLessThanOrEqual(2500);
    expect(await quota.usedMb(51)).toBe(granted);
  });

  it('reserve is idempotent per image; release is idempotent and gives the room back', async () => {
    const { local, prefix } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client);
    const quota = new DynamoQuotaLedger(documentClient(client), `${prefix}-control`);
    expect(await quota.reserve(52, 1, 600, 1000)).toEqual({ ok: true });
    expect(counter.count()).toBe(1); // a user's first reserve: one request
    expect(await quota.reserve(52, 1, 600, 1000)).toEqual({ ok: true });
    expect(await quota.usedMb(52)).toBe(600);
    expect(await quota.reserve(52, 2, 500, 1000)).toEqual({ ok: false, usedMb: 600 });
    expect(await quota.reserve(52, 3, 2000, 1000)).toEqual({ ok: false, usedMb: 600 });
    await quota.release(52, 1);
    await quota.release(52, 1);
    await quota.release(52, 99);
    expect(await quota.usedMb(52)).toBe(0);
    expect(await quota.reserve(52, 2, 500, 1000)).toEqual({ ok: true });
    expect(await quota.entry(52)).toEqual({ userId: 52, usedMb: 500, images: { 2: 500 } });
  });

  it('reset sets the ledger to what the log says', async () => {
    const { stores } = dynamo();
    const quota = stores.quota;
    await quota.reserve(53, 1, 10, 100);
    await quota.reserve(53, 2, 20, 100);
    await quota.reset(53, { 2: 20, 3: 30 });
    expect(await quota.entry(53)).toEqual({ userId: 53, usedMb: 50, images: { 2: 20, 3: 30 } });
    expect(await quota.usedMb(9999)).toBe(0);
  });
});
