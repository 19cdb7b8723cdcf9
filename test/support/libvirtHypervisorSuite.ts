/**
 * One attach/detach suite, run against two back ends: a real libvirtd/QEMU
 * (test/int/hypervisor.libvirt.int.test.ts) and the simulated virsh
 * (test/int/hypervisor.simulated.int.test.ts). The path under test is the whole
 * chain: SsmHypervisor -> real SSMClient -> local Run Command endpoint -> the
 * project's SSM documents run by sh -> virsh.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { mkdtempSync, rmSync } from 'node:fs';
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
}

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
      for (const imageId of [1, 2, 3]) {
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
