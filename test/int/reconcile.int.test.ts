/**
 * The reconciler against a REAL libvirtd + QEMU, one test per repair. Each test builds
 * the exact state a crash (or an operator's hand) leaves: the device claim, the events
 * and the host's disks are written directly with the adapters and `virsh`, as the
 * interrupted request would have left them. Then `reconcile` runs (settleMs 0) and the
 * test checks the repair it reports, the records, and that records, claims and
 * `virsh domblklist` agree (test/support/faultsInvariants.ts).
 *
 * Required in CI: without libvirt this suite fails when CI is set; on a developer
 * machine it skips loudly. Set libvirt up with `bash scripts/setup-libvirt.sh`.
 */
import '../support/faultsEnv';
import '../../local/localDefaults';
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { handleCommand } from '../../application/commandHandling';
import { reconcile, type ReconcileReport } from '../../application/reconciler';
import { attachImage, detachImage, onVmStateChange, type ServiceDeps } from '../../application/storageImages';
import { streamIdOf } from '../../domain/storageImage';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { checkInvariants, snapshotLog } from '../support/faultsInvariants';
import {
  SYSTEM_RECONCILED,
  domainOf,
  libvirtVms,
  readyImages,
  userCtx,
  virshAttach,
  virshDetach,
  vmIdBase,
  type VmHelper,
} from '../support/faultsStack';
import { LIBVIRT_URI, domblklist, libvirtSuiteMode } from '../support/libvirtTestDomains';

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
    vmPool = Array.from({ length: 15 }, () => nextVmId++);
    await vms.runMany(vmPool, USER, HOST);
    imagePool = await readyImages(stack, USER, 24);
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
  const lastEvent = async (imageId: number) => (await deps.events.readStream(streamIdOf(imageId))).at(-1)!;
  const run = (vmIds?: number[], settleMs = 0): Promise<ReconcileReport> => reconcile(deps, { settleMs, ...(vmIds ? { vmIds } : {}) });
  const expectAgreement = async (vmIds?: number[]) => {
    await stack.drain();
    const report = await checkInvariants({ deps, storagePath: stack.storagePath, hostDisks: vms.hostDisks, ...(vmIds ? { vmIds } : {}) });
    expect(report.problems).toEqual([]);
  };

  // The crash states, written step by step as attachImage / detachImage write them.
  const claim = async (vmId: number, dev: string, imageId: number) =>
    expect(await deps.vms.claimDevice(vmId, USER, dev, imageId, 10, new Date().toISOString())).toEqual({ ok: true });
  const requestAttach = (vmId: number, dev: string, imageId: number) =>
    handleCommand(deps, imageId, { type: 'RequestHotAttach', vm: { vmId, userId: USER, running: true }, diskDev: dev }, userCtx(deps, USER), {
      projectInline: false,
    });

  test('AttachRequested + the disk really on the host (crash after virsh, before Attached) -> attach-completed, claim kept', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    await claim(vmId, 'vdb', img!);
    await requestAttach(vmId, 'vdb', img!);
    virshAttach(domain(vmId), file(img!), 'vdb');

    const report = await run([vmId]);
    expect(report).toEqual({ vmsChecked: 1, hostsUnreachable: [], repairs: [{ kind: 'attach-completed', vmId, diskDev: 'vdb', imageId: img }] });
    expect(await stateOf(img!)).toMatchObject({ status: 'ok', attachment: { phase: 'attached', vmId, diskDev: 'vdb', mode: 'hot' } });
    expect(await lastEvent(img!)).toMatchObject({ type: 'StorageImageAttached', cause: SYSTEM_RECONCILED });
    expect(await claims(vmId)).toEqual({ vdb: img });
    expect(onHost(vmId)).toEqual([{ target: 'vdb', source: file(img!) }]);
    await expectAgreement([vmId]);
  });

  test('AttachRequested, no disk on the host (crash before virsh) -> attach-failed, claim freed, image detached', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    await claim(vmId, 'vdb', img!);
    await requestAttach(vmId, 'vdb', img!);

    const report = await run([vmId]);
    expect(report.repairs).toEqual([{ kind: 'attach-failed', vmId, diskDev: 'vdb', imageId: img }]);
    expect(await stateOf(img!)).toMatchObject({ status: 'ok', attachment: null });
    expect(await lastEvent(img!)).toMatchObject({ type: 'StorageImageAttachFailed', cause: SYSTEM_RECONCILED });
    expect(await claims(vmId)).toEqual({});
    expect(onHost(vmId)).toEqual([]);
    await expectAgreement([vmId]);
    // The image can be attached again, and gets the freed device.
    await expect(attachImage(deps, img!, vmId, { kind: 'user', userId: USER })).resolves.toMatchObject({ vmId, diskDev: 'vdb' });
    await expectAgreement([vmId]);
  });

  test('Attached, the disk gone from the host (detached by hand) -> attached-without-disk: Detached by system/reconciled', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    await attachImage(deps, img!, vmId, { kind: 'user', userId: USER });
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

  test('a claim no event explains -> stale-claim freed (crash after the claim; and after Detached, before the release)', async () => {
    const vmId = await newVm();
    const [a, b] = images(2);
    // a: claimed, then the process died before AttachRequested.
    await claim(vmId, 'vdb', a!);
    // b: attached, detached on the host and in the log, then died before freeing the claim.
    await attachImage(deps, b!, vmId, { kind: 'user', userId: USER });
    expect(await claims(vmId)).toEqual({ vdb: a, vdc: b });
    await virshDetach(domain(vmId), 'vdc');
    await handleCommand(deps, b!, { type: 'Detach', vmId }, userCtx(deps, USER));

    const report = await run([vmId]);
    expect(report.repairs).toEqual([
      { kind: 'stale-claim', vmId, diskDev: 'vdb', imageId: a },
      { kind: 'stale-claim', vmId, diskDev: 'vdc', imageId: b },
    ]);
    expect(await claims(vmId)).toEqual({});
    expect((await deps.events.readStream(streamIdOf(a!))).map((e) => e.type)).toEqual(['StorageImageCreated', 'StorageImageDiskReady']);
    await expectAgreement([vmId]);
  });

  test('a claim no event explains, with the disk on the host -> virsh detach (disk-without-record) and the claim freed', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    await claim(vmId, 'vdb', img!);
    virshAttach(domain(vmId), file(img!), 'vdb');

    const report = await run([vmId]);
    expect(report.repairs).toEqual([
      { kind: 'disk-without-record', vmId, diskDev: 'vdb', imageId: img },
      { kind: 'stale-claim', vmId, diskDev: 'vdb', imageId: img },
    ]);
    expect(onHost(vmId)).toEqual([]);
    expect(await claims(vmId)).toEqual({});
    await expectAgreement([vmId]);
  });

  test('a storage disk on the host, no Attached event, no claim (a timed-out attach that landed late) -> disk-without-record, virsh detached it', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    // The request timed out: AttachFailed and the claim freed; then virsh finished after all.
    await claim(vmId, 'vdb', img!);
    await requestAttach(vmId, 'vdb', img!);
    await handleCommand(deps, img!, { type: 'FailAttach', vmId, diskDev: 'vdb', reason: 'hypervisor: timeout' }, userCtx(deps, USER));
    await deps.vms.releaseDevice(vmId, 'vdb', img!);
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
    const view = await attachImage(deps, other!, vmId, { kind: 'user', userId: USER });
    expect(view.diskDev).toBe('vdc');
    expect((await run([vmId])).repairs).toEqual([]);
    await detachImage(deps, other!, vmId, { kind: 'user', userId: USER });
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
    const view = await attachImage(deps, other!, vmId, { kind: 'user', userId: USER });
    expect(view.diskDev).toBe('vdc');
    expect(await claims(vmId)).toEqual({ vdb: 0, vdc: other });
    await detachImage(deps, other!, vmId, { kind: 'user', userId: USER });
    await virshDetach(domain(vmId), 'vdb');
    await run([vmId]);
    expect(await claims(vmId)).toEqual({});
  });

  test('Attached + the disk on the host, but the claim lost -> claim-restored', async () => {
    const vmId = await newVm();
    const [img] = images(1);
    await attachImage(deps, img!, vmId, { kind: 'user', userId: USER });
    await deps.vms.releaseDevice(vmId, 'vdb', img!);
    expect(await claims(vmId)).toEqual({});

    const report = await run([vmId]);
    expect(report.repairs).toEqual([{ kind: 'claim-restored', vmId, diskDev: 'vdb', imageId: img }]);
    expect(await claims(vmId)).toEqual({ vdb: img });
    expect(onHost(vmId)).toEqual([{ target: 'vdb', source: file(img!) }]);
    expect(await stateOf(img!)).toMatchObject({ attachment: { phase: 'attached', vmId, diskDev: 'vdb' } });
    await expectAgreement([vmId]);
  });

  test('work younger than settleMs is left alone (in flight), and repaired once settled', async () => {
    const vmId = await newVm();
    const [a, b] = images(2);
    await claim(vmId, 'vdb', a!); // in flight: claimed, AttachRequested not yet written
    await claim(vmId, 'vdc', b!);
    await requestAttach(vmId, 'vdc', b!); // in flight: virsh running
    const before = await snapshotLog(deps);

    const report = await run([vmId], 60_000);
    expect(report).toEqual({ vmsChecked: 1, hostsUnreachable: [], repairs: [] });
    expect(await claims(vmId)).toEqual({ vdb: a, vdc: b });
    expect((await snapshotLog(deps)).events).toEqual(before.events);

    const later = await run([vmId], 0);
    expect(later.repairs.map((r) => r.kind).sort()).toEqual(['attach-failed', 'stale-claim']);
    await expectAgreement([vmId]);
  });

  test('an unreachable host is reported, not repaired', async () => {
    const vmId = nextVmId++;
    // Known from a VM event, on a host the Run Command endpoint does not know.
    await onVmStateChange(deps, { vmId, userId: USER, domain: domain(vmId), hostId: UNREACHABLE_HOST, state: 'running', time: new Date().toISOString() });
    const [img] = images(1);
    await claim(vmId, 'vdb', img!);
    await requestAttach(vmId, 'vdb', img!);
    const before = await snapshotLog(deps);

    const report = await run([vmId]);
    expect(report).toEqual({ vmsChecked: 1, hostsUnreachable: [vmId], repairs: [] });
    expect(await claims(vmId)).toEqual({ vdb: img });
    expect((await snapshotLog(deps)).events).toEqual(before.events);

    // The VM stops: the records are detached (no virsh call); the reconciler has nothing left.
    await onVmStateChange(deps, { vmId, userId: USER, domain: domain(vmId), hostId: UNREACHABLE_HOST, state: 'stopped', time: new Date().toISOString() }, 'shutdown');
    expect(await claims(vmId)).toEqual({});
    expect((await run([vmId])).repairs).toEqual([]);
    await expectAgreement([vmId]);
  });

  test('every crash state at once, over every VM: the second run changes nothing (idempotent)', async () => {
    const [v1, v2] = [await newVm(), await newVm()];
    const [i1, i2, i3, i4, i5, i6] = images(6);
    // v1: completed-on-host attach; not-started attach; hand-detached disk.
    await claim(v1, 'vdb', i1!);
    await requestAttach(v1, 'vdb', i1!);
    virshAttach(domain(v1), file(i1!), 'vdb');
    await claim(v1, 'vdc', i2!);
    await requestAttach(v1, 'vdc', i2!);
    await attachImage(deps, i3!, v1, { kind: 'user', userId: USER }); // vdd
    await virshDetach(domain(v1), 'vdd');
    // v2: lost claim; bare claim; unrecorded disk.
    await attachImage(deps, i4!, v2, { kind: 'user', userId: USER }); // vdb
    await deps.vms.releaseDevice(v2, 'vdb', i4!);
    await claim(v2, 'vdc', i5!);
    virshAttach(domain(v2), file(i6!), 'vdd');

    const first = await run();
    const mine = first.repairs.filter((r) => r.vmId === v1 || r.vmId === v2);
    expect(mine.map((r) => `${r.vmId === v1 ? 'v1' : 'v2'} ${r.diskDev} ${r.kind}`).sort()).toEqual([
      'v1 vdb attach-completed',
      'v1 vdc attach-failed',
      'v1 vdd attached-without-disk',
      'v2 vdb claim-restored',
      'v2 vdc stale-claim',
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
