/**
 * The reconciler against a REAL libvirtd + QEMU, one test per repair. Each test builds
 * the exact state a crash (or an operator's hand) leaves. Every command step is one
 * transaction (event + claim), so the only crash states are the gaps around a host
 * command: intent committed and virsh not (yet) confirmed, or virsh detach done and
 * Detached not committed; plus a VM stop whose auto-detach was cut short, and whatever
 * an operator does by hand with virsh. Then `reconcile` runs (settleMs 0) and the test
 * checks the repair it reports, the records, and that records, claims and
 * `virsh domblklist` agree (test/support/faultsInvariants.ts).
 *
 * Required in CI: without libvirt this suite fails when CI is set; on a developer
 * machine it skips loudly. Set libvirt up with `bash scripts/setup-libvirt.sh`.
 */
import '../support/faultsEnv';
import '../../local/localDefaults';
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { contextOf } from '../../application/service';
import { HostCommandError, type Hypervisor } from '../../application/ports';
import { reconcile, type ReconcileReport } from '../../application/reconciler';
import { attachImage, detachImage, onVmStateChange, type ServiceDeps } from '../../application/storageImages';
import { detachInRecords } from '../../application/detach';
import { failAttach } from '../../application/hotAttach';
import { streamIdOf } from '../../domain/storageImage';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { checkInvariants, snapshotLog } from '../support/faultsInvariants';
import {
  SYSTEM_RECONCILED,
  domainOf,
  libvirtVms,
  readyImages,
  requestAttach,
  virshAttach,
  virshDetach,
  vmIdBase,
  type VmHelper,
} from '../support/faultsStack';
import { LIBVIRT_URI, domblklist, libvirtSuiteMode, virsh } from '../support/libvirtTestDomains';

const mode = libvirtSuiteMode();

if (mode.missingInCi) {
  test('libvirt is available (required in CI)', () => {
    throw new Error(`CI is set but "virsh -c ${LIBVIRT_URI} version" does not answer: run "bash scripts/setup-libvirt.sh" first`);
  });
}

(mode.run ? describe : describe.skip)('reconciler: records vs a real libvirt', () => {
  jest.setTimeout(60_000);
  const USER = 4300 + (process.pid % 100);
  const HOST = 'mi-0123456789abcdef1';
  const HOST2 = 'mi-0123456789abcdef4'; // a second healthy host (the Run Command endpoint maps it to this machine too)
  const WEDGED = 'mi-0123456789abcdef9'; // answers nothing (see wedged() below)
  // Not in the Run Command instance map (the local stack maps every id of the usual shape,
  // `^(i|mi)-[0-9a-f]{8,17}$`, to this machine; this one is longer).
  const UNREACHABLE_HOST = 'mi-0000000000000000404';
  let stack: LocalStack;
  let deps: ServiceDeps;
  let vms: VmHelper;
  let nextVmId = vmIdBase();
  let vmPool: number[] = [];
  let imagePool: number[] = [];
  const images = (n: number): number[] => {
    if (imagePool.length < n) throw new Error('image pool empty: make more in beforeAll');
    return imagePool.splice(0, n);
  };
  const started = Date.now();

  beforeAll(async () => {
    stack = await startLocalStack({ hypervisor: 'libvirt', feedIntervalMs: 60_000, config: { hostCommandPollMs: 25 } });
    deps = stack.container.deps;
    vms = libvirtVms(stack);
    // Every test's VM and images, made up front (in parallel; one drain makes the files).
    vmPool = Array.from({ length: 16 }, () => nextVmId++);
    await vms.runMany(vmPool, USER, HOST);
    imagePool = await readyImages(stack, USER, 36);
  });
  afterAll(async () => {
    await vms?.cleanup();
    await stack?.close();
    console.log(`reconcile.int: ${Math.round((Date.now() - started) / 100) / 10} s`);
  });

  const newVm = async (): Promise<number> => {
    const vmId = vmPool.shift();
    if (vmId === undefined) throw new Error('VM pool empty: start more in beforeAll');
    return vmId;
  };
  const domain = (vmId: number) => domainOf(vmId, USER);
  const file = (imageId: number) => deps.storage.pathOf({ userId: USER, imageId });
  const onHost = (vmId: number) => domblklist(domain(vmId)).filter((d) => d.source.startsWith(`${stack.storagePath}/`));
  const claims = async (vmId: number) => Object.fromEntries(Object.entries((await deps.vms.get(vmId))!.devices).map(([dev, c]) => [dev, c.imageId]));
  const stateOf = async (imageId: number) => (await deps.events.load(streamIdOf(imageId))).state;
  const lastEvent = async (imageId: number) => (await deps.events.readStream(streamIdOf(imageId))).events.at(-1)!;
  const types = async (imageId: number) => (await deps.events.readStream(streamIdOf(imageId))).events.map((e) => e.type.replace('StorageImage', ''));
  const run = (vmIds?: number[], settleMs = 0): Promise<ReconcileReport> => reconcile(deps, { settleMs, ...(vmIds ? { vmIds } : {}) });
  const expectAgreement = async (vmIds?: number[]) => {
    await stack.drain();
    const report = await checkInvariants({ deps, storagePath: stack.storagePath, hostDisks: vms.hostDisks, ...(vmIds ? { vmIds } : {}) });
    expect(report.problems).toEqual([]);
  };

  // The crash states, written as attachImage / detachImage write them.
  const intent = (vmId: number, dev: string, imageId: number) => requestAttach(deps, imageId, vmId, dev, USER);
  const user = { kind: 'user' as const, userId: USER };
  const EMPTY = { vmsChecked: 1, hostsUnreachable: [], hostsSkipped: [], repairs: [] };

  test('AttachRequested + claim, the disk really on the host (crash after virsh, before Attached) -> attach-completed, claim kept', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    const attachId = await intent(vmId, 'vdb', img!);
    virshAttach(domain(vmId), file(img!), 'vdb');

    const report = await run([vmId]);
    expect(report).toEqual({ ...EMPTY, repairs: [{ kind: 'attach-completed', vmId, diskDev: 'vdb', imageId: img }] });
    expect(await stateOf(img!)).toMatchObject({ status: 'ok', attachment: { phase: 'attached', vmId, diskDev: 'vdb', mode: 'hot', attachId } });
    expect(await lastEvent(img!)).toMatchObject({ type: 'StorageImageAttached', cause: SYSTEM_RECONCILED, data: { attachId } });
    expect((await deps.vms.get(vmId))!.devices.vdb).toMatchObject({ imageId: img, attachId });
    expect(onHost(vmId)).toEqual([{ target: 'vdb', source: file(img!) }]);
    await expectAgreement([vmId]);
  });

  test('AttachRequested + claim, no disk on the host (crash before virsh) -> attach-failed, claim freed, image detached', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    await intent(vmId, 'vdb', img!);

    const report = await run([vmId]);
    expect(report.repairs).toEqual([{ kind: 'attach-failed', vmId, diskDev: 'vdb', imageId: img }]);
    expect(await stateOf(img!)).toMatchObject({ status: 'ok', attachment: null });
    expect(await lastEvent(img!)).toMatchObject({ type: 'StorageImageAttachFailed', cause: SYSTEM_RECONCILED });
    expect(await claims(vmId)).toEqual({});
    expect(onHost(vmId)).toEqual([]);
    await expectAgreement([vmId]);
    // The image can be attached again, and gets the freed device.
    await expect(attachImage(deps, img!, vmId, user)).resolves.toMatchObject({ vmId, diskDev: 'vdb' });
    await expectAgreement([vmId]);
  });

  test('Attached, the disk gone from the host (detached by hand, or virsh detach ran and Detached did not) -> attached-without-disk: Detached by system/reconciled', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    await attachImage(deps, img!, vmId, user);
    await virshDetach(domain(vmId), 'vdb');

    const report = await run([vmId]);
    expect(report.repairs).toEqual([{ kind: 'attached-without-disk', vmId, diskDev: 'vdb', imageId: img }]);
    expect(await stateOf(img!)).toMatchObject({ status: 'ok', attachment: null });
    const detached = await lastEvent(img!);
    expect(detached).toMatchObject({ type: 'StorageImageDetached', data: { vmId, diskDev: 'vdb' } });
    expect(detached.cause).toEqual({ kind: 'system', reason: 'reconciled' });
    expect(await claims(vmId)).toEqual({});
    await expectAgreement([vmId]);
  });

  test('a storage disk on the host, no Attached event, no claim (a timed-out attach that landed late) -> disk-without-record, virsh detached it', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    // The request timed out: AttachFailed with the claim released; then virsh finished after all.
    const attachId = await intent(vmId, 'vdb', img!);
    await failAttach(deps, img!, attachId, 'hypervisor: timeout');
    expect(await claims(vmId)).toEqual({});
    virshAttach(domain(vmId), file(img!), 'vdb');
    expect(onHost(vmId)).toEqual([{ target: 'vdb', source: file(img!) }]);

    const report = await run([vmId]);
    expect(report.repairs).toEqual([{ kind: 'disk-without-record', vmId, diskDev: 'vdb', imageId: img }]);
    expect(domblklist(domain(vmId))).toEqual([]);
    expect(await stateOf(img!)).toMatchObject({ status: 'ok', attachment: null });
    await expectAgreement([vmId]);
  });

  test('a disk that is not a storage image stays on the host; its device is held for it, and freed when it goes', async () => {
    const vmId = await newVm();
    const [img, other] = images(2);
    // A file outside the storage path, e.g. an operator's scratch disk: not ours to detach.
    const foreign = join(dirname(stack.storagePath), `foreign-${img}`);
    copyFileSync(file(img!), foreign);
    virshAttach(domain(vmId), foreign, 'vdb');
    const report = await run([vmId]);
    expect(report.repairs).toEqual([{ kind: 'foreign-disk-claimed', vmId, diskDev: 'vdb' }]);
    expect(domblklist(domain(vmId))).toEqual([{ target: 'vdb', source: foreign }]);
    // An attach now skips the operator's device.
    const view = await attachImage(deps, other!, vmId, user);
    expect(view.diskDev).toBe('vdc');
    expect((await run([vmId])).repairs).toEqual([]);
    await detachImage(deps, other!, vmId, user);
    await virshDetach(domain(vmId), 'vdb');
    expect((await run([vmId])).repairs).toEqual([{ kind: 'foreign-disk-gone', vmId, diskDev: 'vdb' }]);
    expect(await claims(vmId)).toEqual({});
  });

  test('an attach that meets a disk it did not know on its device holds that device and takes the next', async () => {
    const vmId = await newVm();
    const [img, other] = images(2);
    const foreign = join(dirname(stack.storagePath), `foreign-${img}`);
    copyFileSync(file(img!), foreign);
    virshAttach(domain(vmId), foreign, 'vdb'); // before any reconciler run: the records think vdb is free
    const view = await attachImage(deps, other!, vmId, user);
    expect(view.diskDev).toBe('vdc');
    expect(await claims(vmId)).toEqual({ vdb: 0, vdc: other });
    // The first try's intent ended as AttachFailed: the image's log shows both tries.
    expect(await types(other!)).toEqual(['Created', 'DiskReady', 'AttachRequested', 'AttachFailed', 'AttachRequested', 'Attached']);
    await detachImage(deps, other!, vmId, user);
    await virshDetach(domain(vmId), 'vdb');
    await run([vmId]);
    expect(await claims(vmId)).toEqual({});
  });

  test('work younger than settleMs is left alone (in flight), and repaired once settled', async () => {
    const vmId = await newVm();
    const [a, b] = images(2);
    await intent(vmId, 'vdb', a!); // in flight: virsh running
    await attachImage(deps, b!, vmId, user); // vdc, just attached...
    await virshDetach(domain(vmId), 'vdc'); // ...and a detach in flight: virsh done, Detached not yet
    const before = await snapshotLog(deps);

    const report = await run([vmId], 60_000);
    expect(report).toEqual(EMPTY);
    expect(await claims(vmId)).toEqual({ vdb: a, vdc: b });
    expect((await snapshotLog(deps)).events).toEqual(before.events);

    const later = await run([vmId], 0);
    expect(later.repairs.map((r) => r.kind).sort()).toEqual(['attach-failed', 'attached-without-disk']);
    await expectAgreement([vmId]);
  });

  test('an unreachable host is reported (hostsSkipped), not repaired; its VM stop then fails the attach in flight', async () => {
    const vmId = nextVmId++;
    // Known from a VM event, on a host the Run Command endpoint does not know.
    await onVmStateChange(deps, { vmId, userId: USER, domain: domain(vmId), hostId: UNREACHABLE_HOST, state: 'running', time: new Date().toISOString() });
    const [img] = images(1);
    await intent(vmId, 'vdb', img!);
    const before = await snapshotLog(deps);

    const report = await run([vmId]);
    expect(report).toEqual({ vmsChecked: 1, hostsUnreachable: [vmId], hostsSkipped: [UNREACHABLE_HOST], repairs: [] });
    expect(await claims(vmId)).toEqual({ vdb: img });
    expect((await snapshotLog(deps)).events).toEqual(before.events);

    // The VM stops: the records are detached (no virsh call); the reconciler has nothing left.
    await onVmStateChange(deps, { vmId, userId: USER, domain: domain(vmId), hostId: UNREACHABLE_HOST, state: 'stopped', time: new Date().toISOString(), reason: 'shutdown' });
    expect(await claims(vmId)).toEqual({});
    expect(await lastEvent(img!)).toMatchObject({ type: 'StorageImageAttachFailed', data: { reason: 'VM stopped during attach' }, cause: { kind: 'system', reason: 'vm-stopped' } });
    expect((await run([vmId])).repairs).toEqual([]);
    await expectAgreement([vmId]);
  });

  test('a stop whose auto-detach was cut short (VM recorded stopped, one image still attached with its claim) -> auto-detach-finished, cause system', async () => {
    const vmId = await newVm();
    const [a, b] = images(2);
    await attachImage(deps, a!, vmId, user); // vdb
    await attachImage(deps, b!, vmId, user); // vdc
    // The stop as onVmStateChange writes it: the record first...
    virsh('destroy', domain(vmId));
    const stop = { vmId, userId: USER, domain: domain(vmId), hostId: HOST, state: 'stopped' as const, time: new Date().toISOString(), reason: 'stopped' };
    expect((await deps.vms.recordState(stop)).applied).toBe(true);
    // ...then the first image's detach, and the process dies before the second one (EventBridge gave up).
    await detachInRecords(deps, a!, { type: 'DetachStoppedVm', vmId }, contextOf(deps, { kind: 'system', reason: 'vm-stopped' }));
    expect(await claims(vmId)).toEqual({ vdc: b });
    expect(await deps.vms.get(vmId)).toMatchObject({ state: 'stopped', stopReason: 'stopped' });

    const report = await run([vmId]);
    expect(report.repairs).toEqual([{ kind: 'auto-detach-finished', vmId, diskDev: 'vdc', imageId: b }]);
    expect(await lastEvent(b!)).toMatchObject({ type: 'StorageImageDetached', data: { vmId, diskDev: 'vdc' }, cause: { kind: 'system' } });
    expect(await claims(vmId)).toEqual({});
    expect(await stateOf(b!)).toMatchObject({ status: 'ok', attachment: null });
    expect((await run([vmId])).repairs).toEqual([]);
    await expectAgreement([vmId]);
  });

  test('a saved VM keeps its disks: the reconciler leaves them attached, claims and all', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    await attachImage(deps, img!, vmId, user);
    await onVmStateChange(deps, { vmId, userId: USER, domain: domain(vmId), hostId: HOST, state: 'stopped', time: new Date().toISOString(), reason: 'saved' });
    expect(await deps.vms.get(vmId)).toMatchObject({ state: 'stopped', stopReason: 'saved' });
    const before = await snapshotLog(deps);

    expect(await run([vmId])).toEqual(EMPTY);
    expect(await claims(vmId)).toEqual({ vdb: img });
    expect(await stateOf(img!)).toMatchObject({ status: 'ok', attachment: { phase: 'attached', vmId, diskDev: 'vdb' } });
    expect((await snapshotLog(deps)).events).toEqual(before.events);
    await expectAgreement([vmId]);
  });

  test('one wedged host and many VMs on two healthy hosts: every healthy VM is reconciled in one run; the wedged host costs one timeout and is reported', async () => {
    // The wedged host: every command hangs until the SSM adapter gives up (HostCommandError 'timeout').
    const wedgedCalls: string[] = [];
    const real = deps.hypervisor;
    const wedged = <A extends { hostId: string }, R>(name: string, call: (a: A) => Promise<R>) => async (a: A): Promise<R> => {
      if (a.hostId !== WEDGED) return call(a);
      wedgedCalls.push(`${name} ${a.hostId}`);
      await new Promise((ok) => setTimeout(ok, 200)); // hangs, then the adapter's timeout fires
      throw new HostCommandError('timeout', `${name}: no answer from ${a.hostId} in time`);
    };
    const hypervisor: Hypervisor = {
      attachDisk: wedged('attachDisk', (r) => real.attachDisk(r)),
      detachDisk: wedged('detachDisk', (r) => real.detachDisk(r)),
      listDisks: wedged('listDisks', (t) => real.listDisks(t)),
      resizeDisk: wedged('resizeDisk', (r) => real.resizeDisk(r)),
    };
    const withWedged: ServiceDeps = { ...deps, hypervisor };

    // Healthy: 4 VMs on HOST, 4 started on HOST2; each with an attach whose outcome step never ran.
    const onHost1 = [await newVm(), await newVm(), await newVm(), await newVm()];
    const onHost2 = Array.from({ length: 4 }, () => nextVmId++);
    await vms.runMany(onHost2, USER, HOST2);
    const healthy = [...onHost1, ...onHost2];
    const healthyImages = images(healthy.length);
    for (const [i, vmId] of healthy.entries()) {
      await intent(vmId, 'vdb', healthyImages[i]!);
      virshAttach(domain(vmId), file(healthyImages[i]!), 'vdb');
    }
    // Wedged: 3 VMs, each with an attach in flight too (nothing can be learnt from that host).
    const onWedged = Array.from({ length: 3 }, () => nextVmId++);
    const wedgedImages = images(onWedged.length);
    for (const [i, vmId] of onWedged.entries()) {
      await onVmStateChange(deps, { vmId, userId: USER, domain: domain(vmId), hostId: WEDGED, state: 'running', time: new Date().toISOString() });
      await intent(vmId, 'vdb', wedgedImages[i]!);
    }

    const report = await reconcile(withWedged, { settleMs: 0, vmIds: [...onWedged, ...healthy], hostConcurrency: 2 });
    expect(wedgedCalls).toEqual([`listDisks ${WEDGED}`]); // one timeout, then the host is skipped
    expect(report.hostsSkipped).toEqual([WEDGED]);
    expect(report.hostsUnreachable).toEqual([...onWedged].sort((x, y) => x - y));
    expect(report.repairs.map((r) => [r.vmId, r.kind]).sort()).toEqual(healthy.map((vmId) => [vmId, 'attach-completed']).sort());
    for (const [i, vmId] of healthy.entries()) {
      expect(await stateOf(healthyImages[i]!)).toMatchObject({ attachment: { phase: 'attached', vmId, diskDev: 'vdb' } });
    }
    // The wedged host's VMs are untouched, left for a later run.
    for (const [i, vmId] of onWedged.entries()) expect(await stateOf(wedgedImages[i]!)).toMatchObject({ attachment: { phase: 'attaching', vmId } });
    await expectAgreement(healthy);
  });

  test('every crash state at once, over every VM: the second run changes nothing (idempotent)', async () => {
    const [v1, v2] = [await newVm(), await newVm()];
    const [i1, i2, i3, i4, i5, i6] = images(6);
    // v1: attach done on the host, outcome not committed; attach not started; hand-detached disk.
    await intent(v1, 'vdb', i1!);
    virshAttach(domain(v1), file(i1!), 'vdb');
    await intent(v1, 'vdc', i2!);
    await attachImage(deps, i3!, v1, user); // vdd
    await virshDetach(domain(v1), 'vdd');
    // v2: a healthy attach; a timed-out attach that landed late; an unrecorded disk.
    await attachImage(deps, i4!, v2, user); // vdb
    await failAttach(deps, i5!, await intent(v2, 'vdc', i5!), 'hypervisor: timeout');
    virshAttach(domain(v2), file(i5!), 'vdc');
    virshAttach(domain(v2), file(i6!), 'vdd');

    const first = await run();
    const mine = first.repairs.filter((r) => r.vmId === v1 || r.vmId === v2);
    expect(mine.map((r) => `${r.vmId === v1 ? 'v1' : 'v2'} ${r.diskDev} ${r.kind}`).sort()).toEqual([
      'v1 vdb attach-completed',
      'v1 vdc attach-failed',
      'v1 vdd attached-without-disk',
      'v2 vdc disk-without-record',
      'v2 vdd disk-without-record',
    ]);
    await expectAgreement();
    const log = await snapshotLog(deps);
    const claimsBefore = { v1: await claims(v1), v2: await claims(v2) };
    const hostBefore = { v1: onHost(v1), v2: onHost(v2) };

    const second = await run();
    expect(second.repairs).toEqual([]);
    expect(second.vmsChecked).toBe(first.vmsChecked);
    expect((await snapshotLog(deps)).events).toEqual(log.events);
    expect({ v1: await claims(v1), v2: await claims(v2) }).toEqual(claimsBefore);
    expect({ v1: onHost(v1), v2: onHost(v2) }).toEqual(hostBefore);
    expect(claimsBefore).toEqual({ v1: { vdb: i1 }, v2: { vdb: i4 } });
    await expectAgreement();
  });
});
