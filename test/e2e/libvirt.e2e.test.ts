/**
 * Over HTTP against `npm start` with CC1_HYPERVISOR=libvirt (issue 12): the whole path
 * (REST -> handler -> local Run Command endpoint -> the project's SSM documents -> virsh)
 * against a REAL libvirtd + QEMU, with real transient q35 domains named
 * `vm-<vmId>-<userId>` (test/support/libvirtTestDomains.ts). Every effect is checked on
 * the host with `virsh domblklist` / `dumpxml`, read directly, not through the service:
 * - hot attach and detach on virtio and on usb;
 * - auto-detach when the VM stops (the domain destroyed, its stop event through
 *   `POST /_local/events`), then a fresh attach after its restart gets the device back;
 * - boot-time disks: `POST /vms/{vmId}/disks`, then the `GET /vms/{vmId}/disks` XML put
 *   into a domain that is then started: `domblklist` shows them.
 * Disks are raw files, and ext4 when this machine can make it (mkfs.ext4 and parted).
 *
 * Needs libvirt: skips with a loud warning without it, and FAILS when `CI` is set.
 * Domain names carry random VM and user ids (others may run libvirt tests at the same
 * time); every domain made here is destroyed in afterAll, whatever happened.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';
import { LIBVIRT_URI, destroyDomain, domainXml, domblklist, libvirtSuiteMode, virsh } from '../support/libvirtTestDomains';

jest.setTimeout(240_000);

const mode = libvirtSuiteMode();
if (mode.missingInCi) {
  test('libvirt is available (required in CI)', () => {
    throw new Error(`CI is set but "virsh -c ${LIBVIRT_URI} version" does not answer: run "bash scripts/setup-libvirt.sh" first`);
  });
}

const onPath = (tool: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
/** ext4 needs mkfs.ext4 and parted on the storage host (this machine); raw needs nothing. */
const FS = onPath('mkfs.ext4') && onPath('parted') ? 'ext4' : 'raw';
if (FS === 'raw' && mode.run) console.warn('\n*** mkfs.ext4 or parted missing: the libvirt e2e suite uses raw disks only.\n');

// Random ids, so that two runs on one libvirtd never share a domain name.
const USER = 60_000 + Math.floor(Math.random() * 30_000);
const VM0 = 800_000 + Math.floor(Math.random() * 90_000) * 10;
const domainOf = (vmId: number) => `vm-${vmId}-${USER}`;
const madeDomains = new Set<string>();

/** Starts a transient test domain, with extra `<disk>` elements (boot-time disks) if given. */
const startDomain = (vmId: number, disksXml: string[] = []) => {
  const name = domainOf(vmId);
  const dir = mkdtempSync(join(tmpdir(), 'cc1-e2e-domain-'));
  try {
    const file = join(dir, 'domain.xml');
    writeFileSync(file, domainXml(name).replace('</devices>', `${disksXml.join('\n')}\n  </devices>`));
    madeDomains.add(name);
    virsh('create', file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

/** `<target dev=... bus=...>` of every disk of the running domain, from its live XML. */
const targetBuses = (vmId: number): Record<string, string> =>
  Object.fromEntries([...virsh('dumpxml', domainOf(vmId)).matchAll(/<target dev='([a-z]+)' bus='([a-z]+)'\/>/g)].map((m) => [m[1]!, m[2]!]));

type Image = { id: number; state: string; vmId: number | null; diskDev: string | null; diskController: string };

let stack: E2eStack;
let user: string;
let portal: string;

(mode.run ? describe : describe.skip)('e2e over HTTP with a real libvirt (CC1_HYPERVISOR=libvirt)', () => {
  beforeAll(async () => {
    stack = await startE2eStack({ env: { CC1_HYPERVISOR: 'libvirt' }, startTimeoutMs: 120_000 });
    expect(stack.output()).toContain('Hypervisor: real libvirt');
    user = await stack.token(USER);
    portal = await stack.token(USER + 1, { portal: true });
  });

  afterAll(async () => {
    for (const name of madeDomains) destroyDomain(name);
    await stack?.stop();
  });

  /** The disk file of an image, as the local stack lays it out (SPEC: `<storage path>/<user id>/<image id>`). */
  const fileOf = (id: number) => join(stack.dataDir, 'storage', String(USER), String(id));

  const readyImage = async (diskController: string, filesystem = 'raw', sizeMb = 8): Promise<Image> => {
    const created = await stack.rest('POST', '/storage-images', { token: user, body: { name: `${diskController} ${filesystem}`, diskController, filesystem, sizeMb } });
    expect(created.status).toBe(201);
    const ready = await waitFor(
      () => stack.rest('GET', `/storage-images/${created.body.id}`, { token: user }),
      (r) => r.body.state !== 'adding',
      120_000,
      200,
    );
    expect(ready.body.state).toBe('ok');
    return ready.body;
  };
  const attach = (id: number, vmId: number) => stack.rest('POST', `/storage-images/${id}/attach`, { token: user, body: { vmId } });
  const detach = (id: number, vmId: number) => stack.rest('POST', `/storage-images/${id}/detach`, { token: user, body: { vmId } });
  const running = async (vmId: number) => {
    startDomain(vmId);
    await stack.putVmEvent({ vmId, userId: USER, state: 'running' });
  };

  test(`hot attach and detach on virtio and usb (${FS} and raw disks): the domain's disks follow every reply`, async () => {
    const vm = VM0 + 1;
    await running(vm);
    const virtio = await readyImage('virtio', 'raw');
    const usb = await readyImage('usb', FS, 16);

    const a = await attach(virtio.id, vm);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ vmId: vm, diskDev: 'vdb' });
    const b = await attach(usb.id, vm);
    expect(b.status).toBe(200);
    expect(b.body).toMatchObject({ vmId: vm, diskDev: 'sdb' });
    expect(domblklist(domainOf(vm))).toEqual([
      { target: 'vdb', source: fileOf(virtio.id) },
      { target: 'sdb', source: fileOf(usb.id) },
    ]);
    expect(targetBuses(vm)).toEqual({ vdb: 'virtio', sdb: 'usb' });

    const c = await detach(virtio.id, vm);
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ vmId: null, diskDev: null });
    expect(domblklist(domainOf(vm))).toEqual([{ target: 'sdb', source: fileOf(usb.id) }]);
    const d = await detach(usb.id, vm);
    expect(d.status).toBe(200);
    expect(domblklist(domainOf(vm))).toEqual([]);

    // vdb is free on the host and in the records: a new attach takes it again.
    expect((await attach(virtio.id, vm)).body).toMatchObject({ vmId: vm, diskDev: 'vdb' });
    expect(domblklist(domainOf(vm))).toEqual([{ target: 'vdb', source: fileOf(virtio.id) }]);
  });

  test('a VM that stops (domain destroyed, stop event) auto-detaches its disks; after a restart the device is free again', async () => {
    const vm = VM0 + 2;
    await running(vm);
    const image = await readyImage('virtio');
    expect((await attach(image.id, vm)).body).toMatchObject({ vmId: vm, diskDev: 'vdb' });
    expect(domblklist(domainOf(vm)).map((d) => d.target)).toEqual(['vdb']);

    destroyDomain(domainOf(vm));
    await stack.putVmEvent({ vmId: vm, userId: USER, state: 'stopped', reason: 'destroyed' });
    expect((await stack.rest('GET', `/storage-images/${image.id}`, { token: user })).body).toMatchObject({ vmId: null, diskDev: null });
    const last = (await stack.rest('GET', `/storage-images/${image.id}/history`, { token: user })).body.items.at(-1);
    expect(last).toMatchObject({ type: 'StorageImageDetached', cause: { kind: 'system', reason: 'vm-stopped' } });

    await running(vm);
    expect(domblklist(domainOf(vm))).toEqual([]);
    expect((await attach(image.id, vm)).body).toMatchObject({ vmId: vm, diskDev: 'vdb' });
    expect(domblklist(domainOf(vm))).toEqual([{ target: 'vdb', source: fileOf(image.id) }]);
  });

  test('boot-time disks: recorded for a VM not running yet, their XML put into the domain that is then started', async () => {
    const vm = VM0 + 3;
    // q35 has no IDE bus: sata (sd*) and virtio (vd*) are the boot-time buses this domain has.
    const sata = await readyImage('sata', FS, 16);
    const virtio = await readyImage('virtio');
    const recorded = await stack.rest('POST', `/vms/${vm}/disks`, { token: portal, body: { userId: USER, storageImageIds: [sata.id, virtio.id] } });
    expect(recorded.status).toBe(200);
    const devices = Object.fromEntries((recorded.body.items as Image[]).map((i) => [i.id, i.diskDev]));
    expect(devices).toEqual({ [sata.id]: 'sdb', [virtio.id]: 'vdb' });

    const xml = await stack.rest('GET', `/vms/${vm}/disks`, { token: user });
    expect(xml.status).toBe(200);
    const disks = xml.body.items as Array<{ imageId: number; diskDev: string; xml: string }>;
    expect(disks.map((d) => [d.imageId, d.diskDev]).sort()).toEqual([
      [sata.id, 'sdb'],
      [virtio.id, 'vdb'],
    ].sort());

    startDomain(vm, disks.map((d) => d.xml));
    expect(domblklist(domainOf(vm)).sort((x, y) => x.target.localeCompare(y.target))).toEqual([
      { target: 'sdb', source: fileOf(sata.id) },
      { target: 'vdb', source: fileOf(virtio.id) },
    ]);
    expect(targetBuses(vm)).toEqual({ sdb: 'sata', vdb: 'virtio' });

    // The VM runs, then stops: its boot-time disks are detached in the records.
    await stack.putVmEvent({ vmId: vm, userId: USER, state: 'running' });
    destroyDomain(domainOf(vm));
    await stack.putVmEvent({ vmId: vm, userId: USER, state: 'stopped', reason: 'shutdown' });
    for (const id of [sata.id, virtio.id]) {
      expect((await stack.rest('GET', `/storage-images/${id}`, { token: user })).body).toMatchObject({ vmId: null, diskDev: null });
    }
  });
});
