/**
 * Shared helpers of the reconcile and fault tests: a local stack, VMs that run on it
 * (real transient libvirt domains, or simulated ones), ready images, the crash states
 * written directly with the adapters, and host disk lists read straight from virsh.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { attachIdAt, handleCommand } from '../../application/commandHandling';
import { candidateDevices } from '../../domain/devices';
import { createImage, type ServiceDeps } from '../../application/storageImages';
import type { AttachedDisk } from '../../application/ports';
import type { VmRecord } from '../../application/storePorts';
import { streamIdOf, type CommandContext } from '../../domain/storageImage';
import type { LocalStack } from '../../local/stack';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIBVIRT_URI, domainXml, domblklist, virsh } from './libvirtTestDomains';

const run = promisify(execFile);

export const SYSTEM_RECONCILED = { kind: 'system', reason: 'reconciled' } as const;

/** A random base for VM ids, so that parallel or repeated runs do not share domains. */
export const vmIdBase = (): number => 910_000 + Math.floor(Math.random() * 80_000) * 10;

export const domainOf = (vmId: number, userId: number): string => `vm-${vmId}-${userId}`;

export interface VmHelper {
  /** Starts the domain on the host (libvirt: a transient domain) and sends "running". */
  run(vmId: number, userId: number, hostId: string): Promise<void>;
  /** The same for many VMs, in parallel. */
  runMany(vmIds: number[], userId: number, hostId: string): Promise<void>;
  /** What the host has, read directly (libvirt: `virsh domblklist`), not through SSM. */
  hostDisks(vm: VmRecord): Promise<AttachedDisk[] | undefined>;
  cleanup(): Promise<void>;
}

/** Posts one VM state event to the local EventBridge entry (which also learns the host). */
export const sendVmEvent = async (stack: LocalStack, detail: Record<string, unknown>, time = new Date().toISOString()): Promise<void> => {
  const res = await fetch(`${stack.url}/_local/events`, {
    method: 'POST',
    body: JSON.stringify({ Entries: [{ Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: JSON.stringify(detail), Time: time }] }),
  });
  if (res.status !== 200) throw new Error(`/_local/events answered ${res.status}`);
  const body = (await res.json()) as { Entries?: Array<{ ErrorCode?: string }> };
  if (body.Entries?.some((e) => e.ErrorCode)) throw new Error(`/_local/events refused: ${JSON.stringify(body)}`);
};

export const libvirtVms = (stack: LocalStack): VmHelper => {
  const domains = new Set<string>();
  return {
    async run(vmId, userId, hostId) {
      const domain = domainOf(vmId, userId);
      domains.add(domain);
      const dir = await mkdtemp(join(tmpdir(), 'cc1-domain-'));
      try {
        await writeFile(join(dir, 'domain.xml'), domainXml(domain));
        await run('virsh', ['-c', LIBVIRT_URI, 'create', join(dir, 'domain.xml')], { timeout: 60_000 });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      await sendVmEvent(stack, { vmId, userId, domain, hostId, state: 'running' });
    },
    async runMany(vmIds, userId, hostId) {
      await Promise.all(vmIds.map((vmId) => this.run(vmId, userId, hostId)));
    },
    async hostDisks(vm) {
      if (!vm.domain) return undefined;
      try {
        return domblklist(vm.domain).map((d) => ({ dev: d.target, source: d.source }));
      } catch {
        return []; // not on the host: no disks
      }
    },
    async cleanup() {
      // In parallel: a destroy takes a second or two.
      await Promise.all([...domains].map((d) => run('virsh', ['-c', LIBVIRT_URI, 'destroy', d]).catch(() => undefined)));
    },
  };
};

export const simulatedVms = (stack: LocalStack): VmHelper => ({
  async run(vmId, userId, hostId) {
    // The local EventBridge entry marks the simulated domain running.
    await sendVmEvent(stack, { vmId, userId, domain: domainOf(vmId, userId), hostId, state: 'running' });
  },
  async runMany(vmIds, userId, hostId) {
    for (const vmId of vmIds) await this.run(vmId, userId, hostId);
  },
  async hostDisks(vm) {
    if (!vm.domain || !vm.hostId) return undefined;
    try {
      return await stack.container.deps.hypervisor.listDisks({ hostId: vm.hostId, domain: vm.domain });
    } catch {
      return undefined;
    }
  },
  async cleanup() {},
});

/** Ready raw images of `userId` (the disk-file reaction makes the files on drain). */
export const readyImages = async (stack: LocalStack, userId: number, n: number, diskController: 'virtio' | 'usb' = 'virtio'): Promise<number[]> => {
  const deps = stack.container.deps;
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const view = await createImage(deps, { name: `disk ${i}`, description: '', diskController, filesystem: 'raw', sizeMb: 1 }, { kind: 'user', userId });
    ids.push(view.id);
  }
  await stack.drain();
  for (const id of ids) {
    const { state } = await deps.events.load(streamIdOf(id));
    if (state.status !== 'ok') throw new Error(`image ${id} is ${state.status}, not ok`);
  }
  return ids;
};

export const userCtx = (deps: ServiceDeps, userId: number): CommandContext => ({
  actor: { kind: 'user', userId },
  now: (deps.clock ?? (() => new Date().toISOString()))(),
});

/**
 * The intent step of a hot attach, as attachImage commits it: AttachRequested and the
 * device claim (naming this attach) in one transaction. What a crash before the
 * outcome step leaves. Returns the attach id.
 */
export const requestAttach = async (deps: ServiceDeps, imageId: number, vmId: number, dev: string, userId: number): Promise<string> => {
  const loaded = await deps.events.load(streamIdOf(imageId));
  const attachId = attachIdAt(imageId, loaded);
  // The decider takes the first free device: the ones before `dev` count as taken.
  const bus = loaded.state.status === 'none' ? 'virtio' : loaded.state.image.diskController;
  const candidates = candidateDevices(bus);
  const devicesTaken = candidates.slice(0, candidates.indexOf(dev));
  await handleCommand(deps, imageId, { type: 'RequestHotAttach', vm: { vmId, userId, running: true }, devicesTaken, maxDisks: deps.config.maxDisksPerVm, attachId }, userCtx(deps, userId), {
    loaded,
    effects: () => ({ claims: [{ vmId, userId, dev, imageId, attachId, maxDevices: deps.config.maxDisksPerVm }] }),
  });
  return attachId;
};

/** `virsh attach-disk` by hand, as the AttachDisk document runs it. */
export const virshAttach = (domain: string, file: string, dev: string, bus = 'virtio'): void => {
  virsh('attach-disk', domain, file, dev, '--targetbus', bus, '--driver', 'qemu', '--subdriver', 'raw', '--live');
};

/** `virsh detach-disk` by hand, waiting until domblklist no longer shows it. */
export const virshDetach = async (domain: string, dev: string): Promise<void> => {
  virsh('detach-disk', domain, dev, '--live');
  for (let i = 0; i < 100; i++) {
    if (!domblklist(domain).some((d) => d.target === dev)) return;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`${dev} still on ${domain} after detach-disk`);
};
