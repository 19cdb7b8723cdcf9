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
 *   into a domain that is then started: `domblklist` shows them;
 * - live resize of an attached virtio disk: `virsh domblkinfo` shows the new capacity (what
 *   QEMU exposes to the guest), the image, its history and the quota follow; a smaller
 *   size is refused; a blockresize that fails (the domain shut off behind the service's
 *   back) leaves every size as it was (ResizeRequested, then ResizeFailed).
 * Disks are raw files, and ext4 when this machine can make it (mkfs.ext4 and parted).
 *
 * Needs libvirt: skips with a loud warning without it, and FAILS when `CI` is set.
 * Domain names carry random VM and user ids (others may run libvirt tests at the same
 * time); every domain made here is destroyed (and undefined) in afterAll, whatever happened.
 */
import { ListCommandInvocationsCommand, SSMClient, type CommandInvocation } from '@aws-sdk/client-ssm';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_DOCUMENT_NAMES } from '../../adapters/ssm/documents';
import { LOCAL_STACK_FILE } from '../../local/stack';
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';
import {
  LIBVIRT_URI,
  createPersistentDomain,
  destroyDomain,
  domainXml,
  domblkinfo,
  domblklist,
  libvirtSuiteMode,
  removeDomain,
  virsh,
} from '../support/libvirtTestDomains';

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
const MiB = 1024 * 1024;

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
    for (const name of madeDomains) removeDomain(name);
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
  const resize = (id: number, sizeMb: number) => stack.rest('POST', `/storage-images/${id}/resize`, { token: user, body: { sizeMb } });
  const usedMb = async (): Promise<number> => (await stack.rest('GET', '/quota', { token: user })).body.usedMb;
  const history = async (id: number): Promise<Array<{ type: string; data: Record<string, unknown> }>> =>
    (await stack.rest('GET', `/storage-images/${id}/history`, { token: user })).body.items;
  /** The BlockResize commands the stack sent, oldest first, as its Run Command endpoint lists them (exit code, output). */
  const blockResizeRuns = async (): Promise<Array<{ code: number | undefined; output: string }>> => {
    const { ssmEndpoint } = JSON.parse(readFileSync(join(stack.dataDir, LOCAL_STACK_FILE), 'utf8')) as { ssmEndpoint: string };
    const ssm = new SSMClient({ endpoint: ssmEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    try {
      const all: CommandInvocation[] = [];
      let NextToken: string | undefined;
      do {
        const page = await ssm.send(new ListCommandInvocationsCommand({ Details: true, NextToken }));
        all.push(...(page.CommandInvocations ?? []));
        NextToken = page.NextToken;
      } while (NextToken);
      return all
        .filter((i) => i.DocumentName === DEFAULT_DOCUMENT_NAMES.blockResize)
        .map((i) => ({ code: i.CommandPlugins?.[0]?.ResponseCode, output: i.CommandPlugins?.[0]?.Output ?? '' }));
    } finally {
      ssm.destroy();
    }
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

  test('an attached virtio disk grows live: domblkinfo shows the new capacity; the image, its history and the quota follow', async () => {
    const vm = VM0 + 4;
    await running(vm);
    const image = await readyImage('virtio', 'raw', 8);
    expect((await attach(image.id, vm)).body).toMatchObject({ vmId: vm, diskDev: 'vdb' });
    expect(domblkinfo(domainOf(vm), 'vdb').capacity).toBe(8 * MiB);
    const used = await usedMb();
    const runs = (await blockResizeRuns()).length;

    const grown = await resize(image.id, 24);
    expect(grown.status).toBe(200);
    // Live, through the BlockResize document (not the storage host's file document).
    expect((await blockResizeRuns()).slice(runs)).toEqual([{ code: 0, output: expect.stringContaining('CC1_OK: vdb of') }]);
    expect(grown.body).toMatchObject({ id: image.id, sizeMb: 24, vmId: vm, diskDev: 'vdb', state: 'ok' });
    // What QEMU exposes to the guest, read from the host directly; the raw file grew with it.
    expect(domblkinfo(domainOf(vm), 'vdb')).toEqual({ capacity: 24 * MiB, physical: 24 * MiB });
    expect(statSync(fileOf(image.id)).size).toBe(24 * MiB);
    expect((await stack.rest('GET', `/storage-images/${image.id}`, { token: user })).body.sizeMb).toBe(24);
    expect((await history(image.id)).at(-1)).toMatchObject({ type: 'StorageImageResized', data: { fromMb: 8, toMb: 24 } });
    expect(await usedMb()).toBe(used + 16);

    // Smaller (or equal) is refused before the host: nothing changes anywhere.
    const smaller = await resize(image.id, 16);
    expect([smaller.status, smaller.body.error?.code]).toEqual([400, 'image_invalid_size']);
    expect(domblkinfo(domainOf(vm), 'vdb').capacity).toBe(24 * MiB);
    expect(await usedMb()).toBe(used + 16);
    // Still attached and usable: the disk is detached as before.
    expect((await detach(image.id, vm)).body).toMatchObject({ vmId: null, diskDev: null, sizeMb: 24 });
    expect(domblklist(domainOf(vm))).toEqual([]);
  });

  test('a blockresize that fails (the domain shut off behind the service) leaves the sizes and the quota as they were; the history says it was tried and failed', async () => {
    const vm = VM0 + 5;
    // Persistent: destroyed, it stays defined (shut off) with the disk in its config.
    madeDomains.add(domainOf(vm));
    createPersistentDomain(domainOf(vm));
    await stack.putVmEvent({ vmId: vm, userId: USER, state: 'running' });
    const image = await readyImage('virtio', 'raw', 8);
    expect((await attach(image.id, vm)).body).toMatchObject({ vmId: vm, diskDev: 'vdb' });
    const used = await usedMb();
    const before = await history(image.id);
    // The VM stops without a stop event: the records still say it runs, so the resize goes live.
    destroyDomain(domainOf(vm));

    const refused = await resize(image.id, 24);
    expect([refused.status, refused.body.error?.code]).toEqual([409, 'image_resize']);
    expect(refused.body.error.message).toBe('The host refused to resize the disk.');
    // It was blockresize itself that failed, as the document's marker line tells the operator.
    expect((await blockResizeRuns()).at(-1)).toEqual({
      code: 11,
      output: expect.stringMatching(/CC1_ERROR=failed: virsh blockresize: .*Requested operation is not valid: domain is not running/s),
    });
    expect(domblkinfo(domainOf(vm), 'vdb')).toEqual({ capacity: 8 * MiB, physical: 8 * MiB });
    expect(statSync(fileOf(image.id)).size).toBe(8 * MiB);
    expect((await stack.rest('GET', `/storage-images/${image.id}`, { token: user })).body).toMatchObject({ sizeMb: 8, vmId: vm, diskDev: 'vdb' });
    // The saga's intent and its failed outcome (the quota it reserved given back), nothing else.
    const after = await history(image.id);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length)).toMatchObject([
      { type: 'StorageImageResizeRequested', data: { fromMb: 8, toMb: 24 } },
      { type: 'StorageImageResizeFailed', data: { fromMb: 8, toMb: 24 } },
    ]);
    expect(await usedMb()).toBe(used);
  });
});
