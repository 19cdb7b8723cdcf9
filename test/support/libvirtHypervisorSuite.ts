/**
 * One attach/detach/resize suite, run against two back ends: a real libvirtd/QEMU
 * (test/int/hypervisor.libvirt.int.test.ts) and the simulated virsh
 * (test/int/hypervisor.simulated.int.test.ts). The path under test is the whole
 * chain: SsmHypervisor -> real SSMClient -> local Run Command endpoint -> the
 * project's SSM documents run by sh -> virsh.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostCommandError, type HostFailureKind } from '../../application/ports';
import { SsmHypervisor, SsmStorageHost } from '../../adapters/ssm/ssmHypervisor';
import { type LocalInstance, type LocalRunCommand, startLocalRunCommand } from '../../local/runCommand/server';

export interface HypervisorBackend {
  name: string;
  instance: (workDir: string) => LocalInstance;
  startDomain(name: string): Promise<void>;
  stopDomain(name: string): Promise<void>;
  /** The domain's disks, read directly from the back end (not through SSM). */
  targets(name: string): Promise<Array<{ target: string; source: string }>>;
  /** Runs the back end's virsh itself (not through SSM): exit code, stdout, stderr. */
  virsh(args: string[]): VirshResult;
  /** A persistent domain, started; `shutOff` then stops it and it stays defined with its disks. */
  startPersistentDomain(name: string): Promise<void>;
  shutOff(name: string): Promise<void>;
  /** Gone for good, persistent or not. */
  removeDomain(name: string): Promise<void>;
}

export interface VirshResult {
  code: number;
  stdout: string;
  stderr: string;
}

const MiB = 1024 * 1024;

export const HOST_ID = 'mi-0123456789abcdef0';
export const STORAGE_HOST_ID = 'mi-0fedcba98765432100';

export interface SuiteContext {
  endpoint: LocalRunCommand;
  client: SSMClient;
  hypervisor: SsmHypervisor;
  storage: SsmStorageHost;
  storagePath: string;
}

export const newClient = (url: string) =>
  new SSMClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });

/** Awaits a rejection and returns the HostCommandError kind. */
export async function failureKind(promise: Promise<unknown>): Promise<HostFailureKind> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof HostCommandError) return e.kind;
    throw e;
  }
  throw new Error('expected a HostCommandError, but the call succeeded');
}

export function describeHypervisorSuite(backend: HypervisorBackend, describeFn: jest.Describe = describe): void {
  describeFn(`hypervisor over SSM documents: ${backend.name}`, () => {
    jest.setTimeout(30_000);
    const ctx = {} as SuiteContext;
    let workDir: string;
    const domain = `vm-${800_000 + Math.floor(Math.random() * 99_999)}-${process.pid % 100_000}`;
    const timings: Record<string, number[]> = {};
    const timed = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
      const start = performance.now();
      const result = await f();
      (timings[label] ??= []).push(Math.round(performance.now() - start));
      return result;
    };

    beforeAll(async () => {
      workDir = mkdtempSync(join(tmpdir(), 'cc1-hv-'));
      ctx.storagePath = join(workDir, 'storage');
      const instance = backend.instance(workDir);
      ctx.endpoint = await startLocalRunCommand({
        instances: { [HOST_ID]: instance, [STORAGE_HOST_ID]: instance },
        invocationVisibleAfterMs: 150, // exercise the InvocationDoesNotExist retry
      });
      ctx.client = newClient(ctx.endpoint.url);
      ctx.hypervisor = new SsmHypervisor({ client: ctx.client, pollIntervalMs: 100, detachWaitSeconds: 10 });
      ctx.storage = new SsmStorageHost({
        client: ctx.client,
        storageHostId: STORAGE_HOST_ID,
        storagePath: ctx.storagePath,
        pollIntervalMs: 100,
      });
      await backend.startDomain(domain);
      for (const imageId of [1, 2, 3, 4, 5, 6]) {
        await timed('create raw file', () => ctx.storage.createDiskFile({ userId: 7, imageId, sizeMb: 16, filesystem: 'raw' }));
      }
    });

    afterAll(async () => {
      await backend.stopDomain(domain).catch(() => undefined);
      await ctx.endpoint?.close();
      ctx.client?.destroy();
      rmSync(workDir, { recursive: true, force: true });
      console.log(`[${backend.name}] timings (ms, through SSM client + endpoint):`, JSON.stringify(timings));
    });

    const file = (imageId: number) => ctx.storage.pathOf({ userId: 7, imageId });
    const target = { hostId: HOST_ID, domain };
    /** `virsh domblkinfo`, read directly: Capacity (what the guest sees) and Physical (the file's size). */
    const blockInfo = (name: string, dev: string) => {
      const r = backend.virsh(['domblkinfo', name, dev]);
      expect([r.code, r.stderr]).toEqual([0, '']);
      const field = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)$`, 'm').exec(r.stdout)?.[1]);
      return { capacity: field('Capacity'), physical: field('Physical') };
    };

    it.each([
      ['virtio', 'vdb'],
      ['usb', 'sdb'],
    ] as const)('attaches and detaches a %s disk (%s), confirmed by domblklist', async (bus, dev) => {
      await timed(`attach ${bus}`, () => ctx.hypervisor.attachDisk({ ...target, file: file(1), dev, bus }));
      expect(await backend.targets(domain)).toContainEqual({ target: dev, source: file(1) });
      expect(await timed('list', () => ctx.hypervisor.listDisks(target))).toContainEqual({ dev, source: file(1) });

      await timed(`detach ${bus}`, () => ctx.hypervisor.detachDisk({ ...target, dev }));
      expect((await backend.targets(domain)).map((d) => d.target)).not.toContain(dev);
      expect(await ctx.hypervisor.listDisks(target)).not.toContainEqual(expect.objectContaining({ dev }));
    });

    it('refuses a second disk on a taken target, keeps the first, and repeats an identical attach harmlessly', async () => {
      await ctx.hypervisor.attachDisk({ ...target, file: file(2), dev: 'vdc', bus: 'virtio' });
      await expect(failureKind(ctx.hypervisor.attachDisk({ ...target, file: file(3), dev: 'vdc', bus: 'virtio' }))).resolves.toBe('failed');
      // The same attach again (a retry) succeeds without a second disk.
      await ctx.hypervisor.attachDisk({ ...target, file: file(2), dev: 'vdc', bus: 'virtio' });
      expect((await backend.targets(domain)).filter((d) => d.target === 'vdc')).toEqual([{ target: 'vdc', source: file(2) }]);
      await ctx.hypervisor.detachDisk({ ...target, dev: 'vdc' });
      // Detaching again (a retry) is a success too.
      await ctx.hypervisor.detachDisk({ ...target, dev: 'vdc' });
      expect((await backend.targets(domain)).map((d) => d.target)).not.toContain('vdc');
    });

    it('reports a domain that does not run on the host as unknown_domain', async () => {
      const ghost = { hostId: HOST_ID, domain: 'vm-1-999999' };
      await expect(failureKind(ctx.hypervisor.attachDisk({ ...ghost, file: file(1), dev: 'vdb', bus: 'virtio' }))).resolves.toBe(
        'unknown_domain',
      );
      await expect(failureKind(ctx.hypervisor.detachDisk({ ...ghost, dev: 'vdb' }))).resolves.toBe('unknown_domain');
      await expect(failureKind(ctx.hypervisor.listDisks(ghost))).resolves.toBe('unknown_domain');
    });

    it('fails cleanly for a missing disk file and for a bus that cannot be hot-plugged', async () => {
      const missing = join(ctx.storagePath, '7', '404');
      await expect(failureKind(ctx.hypervisor.attachDisk({ ...target, file: missing, dev: 'vdd', bus: 'virtio' }))).resolves.toBe('failed');
      await expect(failureKind(ctx.hypervisor.attachDisk({ ...target, file: file(3), dev: 'sdd', bus: 'sata' }))).resolves.toBe('failed');
      expect((await backend.targets(domain)).map((d) => d.target)).not.toEqual(expect.arrayContaining(['vdd']));
    });

    it('grows an attached disk live (blockresize), confirmed by domblkinfo; the same size again succeeds, a smaller one is refused', async () => {
      await ctx.hypervisor.attachDisk({ ...target, file: file(4), dev: 'vdf', bus: 'virtio' });
      expect(blockInfo(domain, 'vdf')).toEqual({ capacity: 16 * MiB, physical: 16 * MiB });

      await timed('resize', () => ctx.hypervisor.resizeDisk({ ...target, dev: 'vdf', sizeMb: 24 }));
      expect(blockInfo(domain, 'vdf')).toEqual({ capacity: 24 * MiB, physical: 24 * MiB });
      expect(statSync(file(4)).size).toBe(24 * MiB);
      // A retry after success: already that size.
      await ctx.hypervisor.resizeDisk({ ...target, dev: 'vdf', sizeMb: 24 });
      // Never shrinks (virsh would): the document refuses before blockresize runs.
      await expect(failureKind(ctx.hypervisor.resizeDisk({ ...target, dev: 'vdf', sizeMb: 20 }))).resolves.toBe('failed');
      expect(blockInfo(domain, 'vdf')).toEqual({ capacity: 24 * MiB, physical: 24 * MiB });

      await expect(failureKind(ctx.hypervisor.resizeDisk({ ...target, dev: 'vdg', sizeMb: 32 }))).resolves.toBe('failed');
      await expect(failureKind(ctx.hypervisor.resizeDisk({ hostId: HOST_ID, domain: 'vm-1-999999', dev: 'vdf', sizeMb: 32 }))).resolves.toBe(
        'unknown_domain',
      );
      await ctx.hypervisor.detachDisk({ ...target, dev: 'vdf' });
    });

    it('virsh blockresize and domblkinfo answer with virsh 9.0 / QEMU 7.2 wording and exit codes', async () => {
      await ctx.hypervisor.attachDisk({ ...target, file: file(5), dev: 'vdg', bus: 'virtio' });
      const failed = (lines: string[]) => ({ code: 1, stdout: '\n', stderr: lines.map((l) => `error: ${l}\n`).join('') });
      const usage = (lines: string[]) => ({ ...failed(lines), stdout: '' });
      const cases: Array<[string[], VirshResult | { code: number; stdout: RegExp; stderr: string }]> = [
        [['domblkinfo', domain, 'vdg'], { code: 0, stdout: /^Capacity: {7}16777216\nAllocation: {5}\d+\nPhysical: {7}16777216\n\n$/, stderr: '' }],
        [['blockresize', domain, 'vdg', '20M'], { code: 0, stdout: "Block device 'vdg' is resized\n", stderr: '' }],
        [['domblkinfo', domain, '--device', 'vdg'], { code: 0, stdout: /^Capacity: {7}20971520\nAllocation: {5}\d+\nPhysical: {7}20971520\n\n$/, stderr: '' }],
        // No unit: KiB. Sizes in bytes: QEMU counts whole sectors, the file gets the exact size.
        [['blockresize', '--domain', domain, '--path', file(5), '--size', '30720'], { code: 0, stdout: `Block device '${file(5)}' is resized\n`, stderr: '' }],
        [['blockresize', domain, 'vdg', '1MB'], { code: 0, stdout: "Block device 'vdg' is resized\n", stderr: '' }],
        [['domblkinfo', domain, file(5)], { code: 0, stdout: /^Capacity: {7}1000448\nAllocation: {5}\d+\nPhysical: {7}1000000\n\n$/, stderr: '' }],
        [['blockresize', domain, 'vdg', '16mib'], { code: 0, stdout: "Block device 'vdg' is resized\n", stderr: '' }],
        [['blockresize', domain, 'vdz', '30M'], failed(["Failed to resize block device 'vdz'", "invalid argument: disk 'vdz' was not found in the domain config"])],
        [['domblkinfo', domain, 'vdz'], failed(['invalid argument: invalid path vdz not assigned to domain'])],
        [['blockresize', 'vm-1-999999', 'vdg', '30M'], failed(["failed to get domain 'vm-1-999999'"])],
        [['domblkinfo', 'vm-1-999999', 'vdg'], failed(["failed to get domain 'vm-1-999999'"])],
        [['blockresize', domain, 'vdg', '2x'], failed(["Scaled numeric value '2x' for <size> option is malformed or out of range", "invalid argument: unknown suffix 'x'"])],
        [['blockresize', domain, 'vdg', '-5M'], failed(["Scaled numeric value '-5M' for <size> option is malformed or out of range"])],
        [['blockresize', domain, 'vdg', '9E'], failed(["Failed to resize block device 'vdg'", "internal error: unable to execute QEMU command 'block_resize': Parameter 'size' expects a >0 size"])],
        [['blockresize', domain, 'vdg'], usage(["command 'blockresize' requires --size option"])],
        [['blockresize', domain, 'vdg', '20M', '--foo'], usage(["command 'blockresize' doesn't support option --foo"])],
        [['domblkinfo', domain], failed(["command 'domblkinfo' requires <device> option"])],
        [['domblkinfo', domain, 'vdg', 'extra'], usage(["unexpected data 'extra'"])],
      ];
      for (const [args, expected] of cases) {
        const got = backend.virsh(args);
        expect({ args, ...got }).toEqual({ args, ...expected, ...(expected.stdout instanceof RegExp ? { stdout: expect.stringMatching(expected.stdout) } : {}) });
      }
      expect(statSync(file(5)).size).toBe(16 * MiB);
      await ctx.hypervisor.detachDisk({ ...target, dev: 'vdg' });
    });

    it('a disk of a shut-off domain does not grow: blockresize fails (domain is not running), the file keeps its size; no live attach or detach either', async () => {
      const stopped = `vm-${700_000 + Math.floor(Math.random() * 99_999)}-${process.pid % 100_000}`;
      await backend.startPersistentDomain(stopped);
      try {
        await ctx.hypervisor.attachDisk({ hostId: HOST_ID, domain: stopped, file: file(6), dev: 'vdb', bus: 'virtio' });
        await backend.shutOff(stopped);
        await expect(failureKind(ctx.hypervisor.resizeDisk({ hostId: HOST_ID, domain: stopped, dev: 'vdb', sizeMb: 32 }))).resolves.toBe('failed');
        expect(backend.virsh(['blockresize', stopped, 'vdb', '32M'])).toEqual({
          code: 1,
          stdout: '\n',
          stderr: "error: Failed to resize block device 'vdb'\nerror: Requested operation is not valid: domain is not running\n",
        });
        expect(blockInfo(stopped, 'vdb')).toEqual({ capacity: 16 * MiB, physical: 16 * MiB });
        expect(statSync(file(6)).size).toBe(16 * MiB);
        // Still defined, shut off, out of the list of running domains; no live change of its disks.
        expect(backend.virsh(['domstate', stopped])).toEqual({ code: 0, stdout: 'shut off\n\n', stderr: '' });
        expect(backend.virsh(['dominfo', stopped]).stdout).toMatch(/^Id: +-\n(.|\n)*^State: +shut off\n(.|\n)*^Persistent: +yes\n/m);
        expect(backend.virsh(['list', '--name']).stdout.split('\n')).not.toContain(stopped);
        const notRunning = (verb: string) => ({
          code: 1,
          stdout: '\n',
          stderr: `error: Failed to ${verb} disk\nerror: Requested operation is not valid: domain is not running\n`,
        });
        expect(backend.virsh(['attach-disk', stopped, file(4), 'vdc', '--targetbus', 'virtio', '--live'])).toEqual(notRunning('attach'));
        expect(backend.virsh(['detach-disk', stopped, 'vdb', '--live'])).toEqual(notRunning('detach'));
      } finally {
        await backend.removeDomain(stopped);
      }
    });

    it('grows a detached disk file (ResizeDiskFile); the same size again succeeds, a smaller size or a missing file is refused', async () => {
      await ctx.storage.resizeDiskFile({ userId: 7, imageId: 4, sizeMb: 32 });
      expect(statSync(file(4)).size).toBe(32 * MiB);
      await ctx.storage.resizeDiskFile({ userId: 7, imageId: 4, sizeMb: 32 });
      await expect(failureKind(ctx.storage.resizeDiskFile({ userId: 7, imageId: 4, sizeMb: 28 }))).resolves.toBe('failed');
      expect(statSync(file(4)).size).toBe(32 * MiB);
      await expect(failureKind(ctx.storage.resizeDiskFile({ userId: 7, imageId: 404, sizeMb: 32 }))).resolves.toBe('failed');
    });

    it('reports an unknown managed instance as unreachable', async () => {
      await expect(failureKind(ctx.hypervisor.listDisks({ hostId: 'mi-00000000000000404', domain }))).resolves.toBe('unreachable');
    });

    it('deletes disk files, idempotently', async () => {
      await ctx.storage.deleteDiskFile({ userId: 7, imageId: 3 });
      await ctx.storage.deleteDiskFile({ userId: 7, imageId: 3 });
      await expect(failureKind(ctx.hypervisor.attachDisk({ ...target, file: file(3), dev: 'vde', bus: 'virtio' }))).resolves.toBe('failed');
    });
  });
}
