/**
 * Attach and detach over HTTP, VM events through the local EventBridge entry
 * (`POST /_local/events`), the boot-time route, attach races, auto-detach of a
 * stopped VM. The simulated hypervisor runs a VM once its `running` event arrived.
 */
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

jest.setTimeout(60_000);

let stack: E2eStack;
let admin: string;
let portal: string;

beforeAll(async () => {
  stack = await startE2eStack();
  [admin, portal] = await Promise.all([stack.token(1, { admin: true }), stack.token(2, { portal: true })]);
});
afterAll(() => stack?.stop());

type Image = { id: number; state: string; vmId: number | null; diskDev: string | null; version: number; userId: number };

const readyImage = async (token: string, body: Record<string, unknown> = {}): Promise<Image> => {
  const created = await stack.rest('POST', '/storage-images', { token, body: { name: 'disk', diskController: 'virtio', sizeMb: 4, ...body } });
  expect(created.status).toBe(201);
  const ready = await waitFor(
    () => stack.rest('GET', `/storage-images/${created.body.id}`, { token }),
    (r) => r.body.state !== 'adding',
  );
  expect(ready.body.state).toBe('ok');
  return ready.body;
};
const get = async (token: string, id: number): Promise<Image> => (await stack.rest('GET', `/storage-images/${id}`, { token })).body;
const listed = async (token: string, id: number): Promise<Image> =>
  (await stack.rest('GET', '/storage-images?limit=1000', { token })).body.items.find((i: Image) => i.id === id);
const history = async (token: string, id: number) =>
  (await stack.rest('GET', `/storage-images/${id}/history`, { token })).body.items as Array<{ type: string; version: number; cause: unknown; data: any }>;
const attach = (token: string, id: number, vmId: number) => stack.rest('POST', `/storage-images/${id}/attach`, { token, body: { vmId } });

describe('hot attach and detach', () => {
  const USER = 201;
  const VM = 2001;
  let user: string;
  beforeAll(async () => {
    user = await stack.token(USER);
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
  });

  test('virtio to a running VM: vmId and vdb, seen at once by GET, list and history', async () => {
    const image = await readyImage(user);
    const reply = await attach(user, image.id, VM);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ id: image.id, vmId: VM, diskDev: 'vdb', state: 'ok' });
    expect(await get(user, image.id)).toMatchObject({ vmId: VM, diskDev: 'vdb' });
    expect(await listed(user, image.id)).toMatchObject({ vmId: VM, diskDev: 'vdb' });
    const events = await history(user, image.id);
    expect(events.map((e) => e.type).slice(-2)).toEqual(['StorageImageAttachRequested', 'StorageImageAttached']);
    expect(events.at(-1)).toMatchObject({ cause: { kind: 'user', userId: USER }, data: { vmId: VM, diskDev: 'vdb', mode: 'hot' } });

    // The next virtio disk takes the next device.
    const second = await readyImage(user);
    expect((await attach(user, second.id, VM)).body.diskDev).toBe('vdc');

    // Attached: no second attach, no revoke, no controller change.
    const again = await attach(user, image.id, VM);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('image_attached');
    const revoke = await stack.rest('DELETE', `/storage-images/${image.id}`, { token: user });
    expect(revoke.status).toBe(409);
    expect(revoke.body.error.code).toBe('image_attached');
    const editController = await stack.rest('PATCH', `/storage-images/${image.id}`, { token: user, body: { diskController: 'usb' } });
    expect(editController.status).toBe(409);
    expect(editController.body.error.code).toBe('image_attached');

    // Detach from the wrong VM is refused; from its VM it works, and is seen at once.
    const wrong = await stack.rest('POST', `/storage-images/${image.id}/detach`, { token: user, body: { vmId: VM + 1 } });
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe('storage_image_detach');
    const detached = await stack.rest('POST', `/storage-images/${image.id}/detach`, { token: user, body: { vmId: VM } });
    expect(detached.status).toBe(200);
    expect(detached.body).toMatchObject({ vmId: null, diskDev: null });
    expect(await get(user, image.id)).toMatchObject({ vmId: null, diskDev: null });
    expect(await listed(user, image.id)).toMatchObject({ vmId: null, diskDev: null });
    expect((await history(user, image.id)).at(-1)).toMatchObject({ type: 'StorageImageDetached', data: { vmId: VM, diskDev: 'vdb' } });
    // Detaching a detached image is refused.
    const twice = await stack.rest('POST', `/storage-images/${image.id}/detach`, { token: user });
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('storage_image_detach');

    // vdb is free again: the next attach takes it (first free device).
    expect((await attach(user, image.id, VM)).body.diskDev).toBe('vdb');
    // Detach without a body, then revoke: 200 locked.
    expect((await stack.rest('POST', `/storage-images/${image.id}/detach`, { token: user })).status).toBe(200);
    const revoked = await stack.rest('DELETE', `/storage-images/${image.id}`, { token: user });
    expect(revoked.status).toBe(200);
    expect(revoked.body.state).toBe('locked');
  });

  test('usb is live-capable: sd device', async () => {
    const image = await readyImage(user, { diskController: 'usb' });
    const reply = await attach(user, image.id, VM);
    expect(reply.status).toBe(200);
    expect(reply.body.diskDev).toMatch(/^sd[b-y]$/);
  });

  test('ide, scsi and sata cannot be hot-plugged into a running VM: 409 storage_image_attach with a reason', async () => {
    for (const diskController of ['ide', 'scsi', 'sata']) {
      const image = await readyImage(user, { diskController });
      const reply = await attach(user, image.id, VM);
      expect({ diskController, status: reply.status, code: reply.body.error?.code }).toEqual({ diskController, status: 409, code: 'storage_image_attach' });
      expect(reply.body.error.message.length).toBeGreaterThan(10);
      expect(await get(user, image.id)).toMatchObject({ vmId: null, diskDev: null });
    }
  });

  test('a VM that is not running: 409 storage_image_attach saying to use the boot-time route; an unknown VM: vm_get', async () => {
    const STOPPED = 2002;
    await stack.putVmEvent({ vmId: STOPPED, userId: USER, state: 'running', time: new Date(Date.now() - 5000).toISOString() });
    await stack.putVmEvent({ vmId: STOPPED, userId: USER, state: 'stopped' });
    const image = await readyImage(user);
    const reply = await attach(user, image.id, STOPPED);
    expect(reply.status).toBe(409);
    expect(reply.body.error.code).toBe('storage_image_attach');
    expect(reply.body.error.message).toMatch(/not running/);
    const unknown = await attach(user, image.id, 2999);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('vm_get');
    expect(await get(user, image.id)).toMatchObject({ vmId: null, diskDev: null });
  });

  test("another user's running VM: vm_get, nothing attached", async () => {
    const other = 202;
    await stack.putVmEvent({ vmId: 2003, userId: other, state: 'running' });
    const image = await readyImage(user);
    const reply = await attach(user, image.id, 2003);
    expect(reply.status).toBe(404);
    expect(reply.body.error.code).toBe('vm_get');
    expect(await get(user, image.id)).toMatchObject({ vmId: null });
  });

  test('an admin detaches any image (POST /admin/storage-images/{id}/detach); the cause is admin', async () => {
    const image = await readyImage(user);
    await attach(user, image.id, VM);
    const reply = await stack.rest('POST', `/admin/storage-images/${image.id}/detach`, { token: admin, body: {} });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ vmId: null, diskDev: null });
    expect(await get(user, image.id)).toMatchObject({ vmId: null });
    expect((await history(user, image.id)).at(-1)).toMatchObject({ type: 'StorageImageDetached', cause: { kind: 'admin', userId: 1 } });
  });
});

describe('boot-time attach (POST|GET /vms/{vmId}/disks)', () => {
  const USER = 301;
  const VM = 3001;
  let user: string;
  beforeAll(async () => {
    user = await stack.token(USER);
  });

  test('a portal records disks of a VM not yet running; GET returns the <disk> XML; a stop detaches them', async () => {
    const ide = await readyImage(user, { diskController: 'ide' });
    const virtio = await readyImage(user, { diskController: 'virtio' });
    const scsi = await readyImage(user, { diskController: 'scsi' });

    // A user token may not use the portal route; nothing is attached.
    const refused = await stack.rest('POST', `/vms/${VM}/disks`, { token: user, body: { userId: USER, storageImageIds: [ide.id] } });
    expect(refused.status).toBe(403);
    expect(await get(user, ide.id)).toMatchObject({ vmId: null });

    const reply = await stack.rest('POST', `/vms/${VM}/disks`, { token: portal, body: { userId: USER, storageImageIds: [ide.id, virtio.id, scsi.id] } });
    expect(reply.status).toBe(200);
    const devs = Object.fromEntries(reply.body.items.map((i: Image) => [i.id, i.diskDev]));
    expect(devs).toEqual({ [ide.id]: 'hdb', [virtio.id]: 'vdb', [scsi.id]: 'sdb' });
    expect(reply.body.items.every((i: Image) => i.vmId === VM)).toBe(true);
    // Read-your-writes.
    expect(await get(user, ide.id)).toMatchObject({ vmId: VM, diskDev: 'hdb' });
    expect(await listed(user, scsi.id)).toMatchObject({ vmId: VM, diskDev: 'sdb' });
    expect((await history(user, ide.id)).at(-1)).toMatchObject({ type: 'StorageImageAttached', cause: { kind: 'portal' }, data: { mode: 'boot' } });

    // A retry of the same request keeps the devices.
    const retry = await stack.rest('POST', `/vms/${VM}/disks`, { token: portal, body: { userId: USER, storageImageIds: [ide.id, virtio.id, scsi.id] } });
    expect(retry.status).toBe(200);
    expect(Object.fromEntries(retry.body.items.map((i: Image) => [i.id, i.diskDev]))).toEqual(devs);

    // The domain XML elements, for the portal (and the VM's owner).
    for (const token of [portal, user, admin]) {
      const xml = await stack.rest('GET', `/vms/${VM}/disks`, { token });
      expect(xml.status).toBe(200);
      expect(xml.body.items).toHaveLength(3);
      const ideDisk = xml.body.items.find((d: { imageId: number }) => d.imageId === ide.id);
      expect(ideDisk.diskDev).toBe('hdb');
      expect(ideDisk.xml).toMatch(/^<disk type='file' device='disk'>.*<\/disk>$/);
      expect(ideDisk.xml).toContain(`<driver name='qemu' type='raw'/>`);
      expect(ideDisk.xml).toContain(`<source file='${stack.dataDir}/storage/${USER}/${ide.id}'/>`);
      expect(ideDisk.xml).toContain(`<target dev='hdb' bus='ide'/>`);
      const v = xml.body.items.find((d: { imageId: number }) => d.imageId === virtio.id);
      expect(v.xml).toContain(`<target dev='vdb' bus='virtio'/>`);
    }
    // Another user: not their VM.
    const stranger = await stack.rest('GET', `/vms/${VM}/disks`, { token: await stack.token(302) });
    expect(stranger.status).toBe(404);
    expect(stranger.body.error.code).toBe('vm_get');
    expect(stranger.text).not.toContain('<disk');

    // The VM starts, then stops: its disks are detached in the records.
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running', time: new Date(Date.now() - 1000).toISOString() });
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'stopped' });
    for (const image of [ide, virtio, scsi]) expect(await get(user, image.id)).toMatchObject({ vmId: null, diskDev: null });
  });

  test('a running VM is refused (409); a user token cannot; images of another user are refused', async () => {
    const RUNNING = 3002;
    await stack.putVmEvent({ vmId: RUNNING, userId: USER, state: 'running' });
    const image = await readyImage(user, { diskController: 'ide' });
    const running = await stack.rest('POST', `/vms/${RUNNING}/disks`, { token: portal, body: { userId: USER, storageImageIds: [image.id] } });
    expect(running.status).toBe(409);
    expect(running.body.error.code).toBe('storage_image_attach');
    const foreign = await stack.rest('POST', `/vms/3003/disks`, { token: portal, body: { userId: 399, storageImageIds: [image.id] } });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe('image_permission');
    expect(await get(user, image.id)).toMatchObject({ vmId: null });
    // An admin may use the route too.
    const byAdmin = await stack.rest('POST', `/vms/3004/disks`, { token: admin, body: { userId: USER, storageImageIds: [image.id] } });
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body.items[0]).toMatchObject({ vmId: 3004, diskDev: 'hdb' });
  });

  test('ide has three devices (hdb..hdd): a fourth is refused', async () => {
    const VM4 = 3005;
    const images = [];
    for (let i = 0; i < 4; i++) images.push(await readyImage(user, { diskController: 'ide' }));
    const ok = await stack.rest('POST', `/vms/${VM4}/disks`, { token: portal, body: { userId: USER, storageImageIds: images.slice(0, 3).map((i) => i.id) } });
    expect(ok.body.items.map((i: Image) => i.diskDev)).toEqual(['hdb', 'hdc', 'hdd']);
    const fourth = await stack.rest('POST', `/vms/${VM4}/disks`, { token: portal, body: { userId: USER, storageImageIds: [images[3]!.id] } });
    expect(fourth.status).toBe(409);
    expect(fourth.body.error.code).toBe('storage_image_attach');
  });
});

describe('attach races over HTTP', () => {
  test('12 images of one user attached concurrently to one running VM: exactly 10 win, distinct devices, 2 get 409', async () => {
    const USER = 401;
    const VM = 4001;
    const user = await stack.token(USER);
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
    const images = await Promise.all(Array.from({ length: 12 }, (_, i) => readyImage(user, { name: `race-${i}` })));
    const replies = await Promise.all(images.map((image) => attach(user, image.id, VM)));
    const won = replies.filter((r) => r.status === 200);
    const lost = replies.filter((r) => r.status !== 200);
    expect(won).toHaveLength(10);
    expect(lost.map((r) => [r.status, r.body.error.code])).toEqual([
      [409, 'storage_image_attach'],
      [409, 'storage_image_attach'],
    ]);
    const devices = won.map((r) => r.body.diskDev as string).sort();
    expect(new Set(devices).size).toBe(10);
    expect(devices).toEqual(['vdb', 'vdc', 'vdd', 'vde', 'vdf', 'vdg', 'vdh', 'vdi', 'vdj', 'vdk']);
    // The records agree: 10 attached in the list, the VM's disks are those 10.
    const items = (await stack.rest('GET', '/storage-images?limit=1000', { token: user })).body.items as Image[];
    const attached = items.filter((i) => i.vmId === VM);
    expect(attached.map((i) => i.diskDev).sort()).toEqual(devices);
    const disks = await stack.rest('GET', `/vms/${VM}/disks`, { token: user });
    expect(disks.body.items.map((d: { diskDev: string }) => d.diskDev).sort()).toEqual(devices);
    // The losers are detached and usable.
    for (const r of lost) expect(r.body.error.message).toEqual(expect.any(String));
    const loserIds = images.map((i) => i.id).filter((id) => !won.some((w) => w.body.id === id));
    for (const id of loserIds) expect(await get(user, id)).toMatchObject({ vmId: null, diskDev: null });
  });

  test('the same image attached concurrently to two running VMs: exactly one wins', async () => {
    const USER = 402;
    const user = await stack.token(USER);
    await stack.putVmEvent({ vmId: 4002, userId: USER, state: 'running' });
    await stack.putVmEvent({ vmId: 4003, userId: USER, state: 'running' });
    const wins: Record<number, number> = { 4002: 0, 4003: 0 };
    for (let round = 0; round < 2; round++) {
      const image = await readyImage(user, { name: `contested-${round}` });
      const replies = await Promise.all([attach(user, image.id, 4002), attach(user, image.id, 4003)]);
      const won = replies.filter((r) => r.status === 200);
      expect(won).toHaveLength(1);
      const loser = replies.find((r) => r.status !== 200)!;
      expect(loser.status).toBe(409);
      expect(['image_attached', 'storage_image_attach', 'concurrency_conflict']).toContain(loser.body.error.code);
      const now = await get(user, image.id);
      const vm = won[0]!.body.vmId as number;
      // The first free device of the winning VM.
      expect(now).toMatchObject({ vmId: vm, diskDev: 'vd' + String.fromCharCode('b'.charCodeAt(0) + wins[vm]!) });
      wins[vm]! += 1;
      const attachedEvents = (await history(user, image.id)).filter((e) => e.type === 'StorageImageAttached');
      expect(attachedEvents).toHaveLength(1);
      // The loser's VM did not keep a device for it.
      const loserVm = won[0]!.body.vmId === 4002 ? 4003 : 4002;
      const disks = await stack.rest('GET', `/vms/${loserVm}/disks`, { token: user });
      expect(disks.body.items.map((d: { imageId: number }) => d.imageId)).not.toContain(image.id);
    }
  });
});

describe('VM stop events', () => {
  const USER = 501;
  let user: string;
  beforeAll(async () => {
    user = await stack.token(USER);
  });

  test('stop -> auto-detach in GET, list and history (system, vm-stopped); the same stop twice -> one Detached; an older running event changes nothing', async () => {
    const VM = 5001;
    const t0 = Date.now() - 60_000;
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running', time: at(0) });
    const a = await readyImage(user);
    const b = await readyImage(user);
    expect((await attach(user, a.id, VM)).status).toBe(200);
    expect((await attach(user, b.id, VM)).status).toBe(200);

    const stop = { vmId: VM, userId: USER, state: 'stopped' as const, time: at(30) };
    await stack.putVmEvent(stop);
    for (const image of [a, b]) {
      expect(await get(user, image.id)).toMatchObject({ vmId: null, diskDev: null });
      expect(await listed(user, image.id)).toMatchObject({ vmId: null, diskDev: null });
      const last = (await history(user, image.id)).at(-1)!;
      expect(last).toMatchObject({ type: 'StorageImageDetached', cause: { kind: 'system', reason: 'vm-stopped' }, data: { vmId: VM } });
    }
    const before = await history(user, a.id);

    // At-least-once delivery: the same event again changes nothing.
    await stack.putVmEvent(stop);
    expect(await history(user, a.id)).toEqual(before);
    expect((await history(user, a.id)).filter((e) => e.type === 'StorageImageDetached')).toHaveLength(1);

    // Out of order: a running event older than the stop changes nothing; the VM stays stopped.
    await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running', time: at(10) });
    const late = await attach(user, a.id, VM);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('storage_image_attach');
    expect(await history(user, a.id)).toEqual(before);
    expect(await get(user, b.id)).toMatchObject({ vmId: null });

    // No dead letters from well-formed events.
    const dead = await stack.call('GET', '/_local/dead-letters');
    expect(dead.body.items).toEqual([]);
  });

  test('a stop with reason migrated (or saved) keeps the disks attached', async () => {
    const cases = [[5002, 'migrated'], [5003, 'saved']] as const;
    await Promise.all(
      cases.map(async ([VM, reason]) => {
        await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running', time: new Date(Date.now() - 5000).toISOString() });
        const image = await readyImage(user);
        expect((await attach(user, image.id, VM)).body.diskDev).toBe('vdb');
        await stack.putVmEvent({ vmId: VM, userId: USER, state: 'stopped', reason });
        expect(await get(user, image.id)).toMatchObject({ vmId: VM, diskDev: 'vdb' });
        expect((await history(user, image.id)).at(-1)!.type).toBe('StorageImageAttached');
      }),
    );
  });

  test('a malformed event is refused or dead-lettered, never applied', async () => {
    const image = await readyImage(user);
    await stack.putVmEvent({ vmId: 5004, userId: USER, state: 'running' });
    await attach(user, image.id, 5004);
    // domain does not match vmId/userId: the handler refuses it (dead letter).
    const reply = await stack.call('POST', '/_local/events', {
      body: {
        Entries: [
          {
            Source: 'cc1.hypervisor',
            DetailType: 'VM State Change',
            Detail: JSON.stringify({ vmId: 5004, userId: USER, domain: 'vm-1-1', hostId: 'i-0123456789abcdef0', state: 'stopped' }),
          },
        ],
      },
    });
    expect(reply.status).toBe(200);
    expect(await get(user, image.id)).toMatchObject({ vmId: 5004 });
    const dead = await stack.call('GET', '/_local/dead-letters');
    expect(dead.body.items.length).toBeGreaterThanOrEqual(1);
  });
});
