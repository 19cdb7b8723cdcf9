/**
 * SPEC 4.7 over HTTP against `tsx local/main.ts`: per-user quotas, admin repair (force
 * revoke of a failed image, disk retry, records-only force detach) and growing a disk,
 * detached (its file) or attached on virtio (live, `virsh blockresize` of the simulated
 * hypervisor). Every REST reply is checked against docs/openapi.yaml by `stack.rest`.
 *
 * A failed image is made as a storage host failure makes one: the owner's folder under
 * the storage path is taken by a plain file, so the storage document cannot `mkdir` it
 * and the disk-file reaction records DiskFailed (root ignores file modes; this does not
 * depend on them).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SIMULATED_STATE_ENV, SIMULATED_VIRSH } from '../../local/simulatedVirsh/simulatedHosts';
import { REPO_ROOT, startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

jest.setTimeout(90_000);

let stack: E2eStack;
let admin: string;
const MiB = 1024 * 1024;

beforeAll(async () => {
  stack = await startE2eStack({ env: { DEFAULT_QUOTA_MB: '1000' } });
  admin = await stack.token(1, { admin: true });
});
afterAll(() => stack?.stop());

const fileOf = (userId: number, imageId: number) => join(stack.dataDir, 'storage', String(userId), String(imageId));
/** The simulated virsh of the running stack, called directly (as a test looks at a real host). */
const simulatedVirsh = (...args: string[]) =>
  execFileSync(SIMULATED_VIRSH, args, { env: { ...process.env, [SIMULATED_STATE_ENV]: join(stack.dataDir, 'simulated-virsh.json') }, encoding: 'utf8' });
/** `virsh domblkinfo`'s Capacity: the size the guest sees. */
const capacityOf = (domain: string, dev: string) => Number(/^Capacity:\s+(\d+)$/m.exec(simulatedVirsh('domblkinfo', domain, dev))?.[1]);

const create = async (token: string, body: Record<string, unknown> = {}) =>
  stack.rest('POST', '/storage-images', { token, body: { name: 'data', diskController: 'virtio', sizeMb: 10, ...body } });

const settled = (token: string, id: number) =>
  waitFor(
    () => stack.rest('GET', `/storage-images/${id}`, { token }),
    (r) => r.body.state !== 'adding',
  ).then((r) => r.body);

const historyOf = async (id: number) => {
  const reply = await stack.rest('GET', `/admin/storage-images/${id}`, { token: admin });
  expect(reply.status).toBe(200);
  const owner = await stack.token(reply.body.userId);
  return (await stack.call('GET', `/storage-images/${id}/history`, { token: owner })).body.items as Array<{ type: string; cause: Record<string, unknown>; data: Record<string, unknown> }>;
};

/** A user whose storage folder is blocked: every disk file made for them fails on the storage host. */
const blockStorageOf = (userId: number) => {
  mkdirSync(join(stack.dataDir, 'storage'), { recursive: true });
  writeFileSync(join(stack.dataDir, 'storage', String(userId)), 'not a folder');
};
const unblockStorageOf = (userId: number) => rmSync(join(stack.dataDir, 'storage', String(userId)), { force: true });

describe('quotas per user', () => {
  test('GET /quota shows the default limit and the use; an own limit set for one user binds that user only', async () => {
    const [carol, dave] = [301, 302];
    const [carolT, daveT] = await Promise.all([stack.token(carol), stack.token(dave)]);
    expect((await stack.rest('GET', '/quota', { token: carolT })).body).toEqual({ limitMb: 1000, usedMb: 0 });
    expect((await create(carolT, { sizeMb: 100 })).status).toBe(201);
    expect((await stack.rest('GET', '/quota', { token: carolT })).body).toEqual({ limitMb: 1000, usedMb: 100 });

    // Only admins read or set quotas.
    expect((await stack.rest('GET', `/admin/users/${carol}/quota`, { token: carolT })).status).toBe(403);
    expect((await stack.rest('PUT', `/admin/users/${carol}/quota`, { token: carolT, body: { limitMb: 5000 } })).status).toBe(403);

    // Carol gets 3000 MB; Dave keeps the default.
    const set = await stack.rest('PUT', `/admin/users/${carol}/quota`, { token: admin, body: { limitMb: 3000 } });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ userId: carol, limitMb: 3000, usedMb: 100, ownLimit: true });
    expect((await stack.rest('GET', `/admin/users/${dave}/quota`, { token: admin })).body).toEqual({ userId: dave, limitMb: 1000, usedMb: 0, ownLimit: false });

    expect((await create(carolT, { sizeMb: 2500 })).status).toBe(201); // 2600 of 3000: over the default, under her own
    const carolOver = await create(carolT, { sizeMb: 500 });
    expect([carolOver.status, carolOver.body.error?.code]).toEqual([409, 'user_storage_limit']);
    expect(carolOver.body.error.message).toContain('3000 MB');
    const daveOver = await create(daveT, { sizeMb: 1500 });
    expect([daveOver.status, daveOver.body.error?.code]).toEqual([409, 'user_storage_limit']);
    expect((await create(daveT, { sizeMb: 1000 })).status).toBe(201);
    expect((await stack.rest('GET', '/quota', { token: carolT })).body).toEqual({ limitMb: 3000, usedMb: 2600 });

    // Lowered below the use: nothing taken away, nothing more allowed; null restores the default.
    expect((await stack.rest('PUT', `/admin/users/${carol}/quota`, { token: admin, body: { limitMb: 50 } })).body.limitMb).toBe(50);
    expect((await create(carolT, { sizeMb: 1 })).status).toBe(409);
    const reset = await stack.rest('PUT', `/admin/users/${carol}/quota`, { token: admin, body: { limitMb: null } });
    expect(reset.body).toEqual({ userId: carol, limitMb: 1000, usedMb: 2600, ownLimit: false });
  });

  test('bad quota input is a 400, never a 500', async () => {
    for (const body of [{ limitMb: -1 }, { limitMb: 1.5 }, { limitMb: '10' }, {}, { limitMb: 10, extra: 1 }]) {
      const reply = await stack.rest('PUT', '/admin/users/303/quota', { token: admin, body });
      expect([reply.status, reply.body.error?.code]).toEqual([400, 'validation']);
    }
    expect((await stack.rest('GET', '/admin/users/0/quota', { token: admin })).status).toBe(400);
  });
});

describe('admin repair', () => {
  test('a failed image is force-revoked: its quota comes back and the history says who and why', async () => {
    const erin = 311;
    const erinT = await stack.token(erin);
    blockStorageOf(erin);
    const made = await create(erinT, { sizeMb: 400 });
    expect(made.status).toBe(201);
    expect((await settled(erinT, made.body.id)).state).toBe('failed');
    expect((await stack.rest('GET', '/quota', { token: erinT })).body.usedMb).toBe(400);

    // The owner cannot delete a failed image (CC1's rule), nor use the admin route.
    expect((await stack.rest('DELETE', `/storage-images/${made.body.id}`, { token: erinT })).body.error.code).toBe('image_delete');
    expect((await stack.rest('DELETE', `/admin/storage-images/${made.body.id}?force=true`, { token: erinT })).status).toBe(403);
    // Without force, the admin meets the same rule.
    expect((await stack.rest('DELETE', `/admin/storage-images/${made.body.id}`, { token: admin })).body.error.code).toBe('image_delete');

    const revoked = await stack.rest('DELETE', `/admin/storage-images/${made.body.id}?force=true`, { token: admin });
    expect(revoked.status).toBe(200);
    expect(revoked.body.state).toBe('locked');
    expect((await stack.rest('GET', '/quota', { token: erinT })).body.usedMb).toBe(0);
    const last = (await stack.rest('GET', `/admin/storage-images/${made.body.id}`, { token: admin })).body;
    expect(last.state).toBe('locked');
    // A repeat changes nothing.
    expect((await stack.rest('DELETE', `/admin/storage-images/${made.body.id}?force=true`, { token: admin })).body.version).toBe(last.version);
    unblockStorageOf(erin);
  });

  test('retry makes the disk file of a failed image; refused for an ok one', async () => {
    const fay = 312;
    const fayT = await stack.token(fay);
    blockStorageOf(fay);
    const made = await create(fayT, { sizeMb: 8 });
    expect((await settled(fayT, made.body.id)).state).toBe('failed');
    unblockStorageOf(fay); // the storage host is repaired

    expect((await stack.rest('POST', `/admin/storage-images/${made.body.id}/retry`, { token: fayT })).status).toBe(403);
    const retried = await stack.rest('POST', `/admin/storage-images/${made.body.id}/retry`, { token: admin });
    expect(retried.status).toBe(200);
    expect(retried.body.state).toBe('adding');
    expect((await settled(fayT, made.body.id)).state).toBe('ok');
    expect(statSync(fileOf(fay, made.body.id)).size).toBe(8 * MiB);

    const again = await stack.rest('POST', `/admin/storage-images/${made.body.id}/retry`, { token: admin });
    expect([again.status, again.body.error?.code]).toEqual([409, 'image_retry']);
    const types = (await historyOf(made.body.id)).map((e) => e.type);
    expect(types).toEqual(['StorageImageCreated', 'StorageImageDiskFailed', 'StorageImageDiskRetried', 'StorageImageDiskReady']);
  });

  test('force detach: in the records only, the device freed, the cause admin with reason forced', async () => {
    const gus = 313;
    const vmId = 3130;
    const gusT = await stack.token(gus);
    await stack.putVmEvent({ vmId, userId: gus, state: 'running' });
    const made = await create(gusT, { sizeMb: 4 });
    expect((await settled(gusT, made.body.id)).state).toBe('ok');
    const attached = await stack.rest('POST', `/storage-images/${made.body.id}/attach`, { token: gusT, body: { vmId } });
    expect(attached.body).toMatchObject({ vmId, diskDev: 'vdb' });

    expect((await stack.rest('POST', `/admin/storage-images/${made.body.id}/detach?force=true`, { token: gusT })).status).toBe(403);
    expect((await stack.rest('POST', `/admin/storage-images/${made.body.id}/detach?force=maybe`, { token: admin })).status).toBe(400);
    const forced = await stack.rest('POST', `/admin/storage-images/${made.body.id}/detach?force=true`, { token: admin });
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({ vmId: null, diskDev: null, state: 'ok' });
    const last = (await historyOf(made.body.id)).at(-1)!;
    expect(last).toMatchObject({ type: 'StorageImageDetached', cause: { kind: 'admin', userId: 1, reason: 'forced' }, data: { vmId, diskDev: 'vdb' } });

    // The host comes back without the disk (rebuilt after it died; here: the simulated virsh
    // unplugs it). The records freed the device in the same step, so the next disk gets vdb.
    simulatedVirsh('detach-disk', `vm-${vmId}-${gus}`, 'vdb', '--live');
    const next = await create(gusT, { sizeMb: 4 });
    await settled(gusT, next.body.id);
    expect((await stack.rest('POST', `/storage-images/${next.body.id}/attach`, { token: gusT, body: { vmId } })).body.diskDev).toBe('vdb');
    // Not attached any more: a second force detach is refused, not a 500.
    const twice = await stack.rest('POST', `/admin/storage-images/${made.body.id}/detach?force=true`, { token: admin });
    expect([twice.status, twice.body.error?.code]).toEqual([409, 'storage_image_detach']);
  });
});

describe('resize', () => {
  test('a detached image grows: its file, its size, the quota; smaller or equal is image_invalid_size', async () => {
    const hal = 321;
    const halT = await stack.token(hal);
    const made = await create(halT, { sizeMb: 10 });
    expect((await settled(halT, made.body.id)).state).toBe('ok');
    expect(statSync(fileOf(hal, made.body.id)).size).toBe(10 * MiB);

    const grown = await stack.rest('POST', `/storage-images/${made.body.id}/resize`, { token: halT, body: { sizeMb: 25 } });
    expect(grown.status).toBe(200);
    expect(grown.body.sizeMb).toBe(25);
    expect(statSync(fileOf(hal, made.body.id)).size).toBe(25 * MiB);
    expect((await stack.rest('GET', '/quota', { token: halT })).body.usedMb).toBe(25);
    expect((await historyOf(made.body.id)).at(-1)).toMatchObject({ type: 'StorageImageResized', data: { fromMb: 10, toMb: 25 }, cause: { kind: 'user', userId: hal } });

    for (const sizeMb of [5, 0]) {
      const reply = await stack.rest('POST', `/storage-images/${made.body.id}/resize`, { token: halT, body: { sizeMb } });
      expect([reply.status, reply.body.error?.code]).toEqual([400, 'image_invalid_size']);
    }
    // The same size again is the answer a retry gets: no second event.
    const same = await stack.rest('POST', `/storage-images/${made.body.id}/resize`, { token: halT, body: { sizeMb: 25 } });
    expect(same.body.version).toBe(grown.body.version);
    // Over the quota: refused before the host, the file unchanged.
    const over = await stack.rest('POST', `/storage-images/${made.body.id}/resize`, { token: halT, body: { sizeMb: 2000 } });
    expect([over.status, over.body.error?.code]).toEqual([409, 'user_storage_limit']);
    expect(statSync(fileOf(hal, made.body.id)).size).toBe(25 * MiB);
    // Someone else's image: image_permission.
    const other = await stack.rest('POST', `/storage-images/${made.body.id}/resize`, { token: await stack.token(322), body: { sizeMb: 30 } });
    expect(other.body.error.code).toBe('image_permission');
  });

  test('an attached virtio image grows live (blockresize): the size the guest sees, its file, the quota; a failed blockresize changes nothing', async () => {
    const lea = 325;
    const vmId = 3250;
    const domain = `vm-${vmId}-${lea}`;
    const leaT = await stack.token(lea);
    await stack.putVmEvent({ vmId, userId: lea, state: 'running' });
    const made = await create(leaT, { sizeMb: 10 });
    expect((await settled(leaT, made.body.id)).state).toBe('ok');
    expect((await stack.rest('POST', `/storage-images/${made.body.id}/attach`, { token: leaT, body: { vmId } })).body).toMatchObject({ vmId, diskDev: 'vdb' });
    expect(capacityOf(domain, 'vdb')).toBe(10 * MiB);

    const grown = await stack.rest('POST', `/storage-images/${made.body.id}/resize`, { token: leaT, body: { sizeMb: 30 } });
    expect(grown.status).toBe(200);
    expect(grown.body).toMatchObject({ sizeMb: 30, vmId, diskDev: 'vdb', state: 'ok' });
    expect(capacityOf(domain, 'vdb')).toBe(30 * MiB);
    expect(statSync(fileOf(lea, made.body.id)).size).toBe(30 * MiB);
    expect((await stack.rest('GET', '/quota', { token: leaT })).body.usedMb).toBe(30);
    expect((await historyOf(made.body.id)).at(-1)).toMatchObject({ type: 'StorageImageResized', data: { fromMb: 10, toMb: 30 } });

    // The VM stops on its host without a stop event (a persistent domain, shut off): the
    // records still say it runs, so the resize goes live and blockresize refuses.
    simulatedVirsh('cc1-sim-shut-off', domain);
    const refused = await stack.rest('POST', `/storage-images/${made.body.id}/resize`, { token: leaT, body: { sizeMb: 40 } });
    expect([refused.status, refused.body.error?.code]).toEqual([409, 'image_resize']);
    expect((await stack.rest('GET', `/storage-images/${made.body.id}`, { token: leaT })).body.sizeMb).toBe(30);
    expect(statSync(fileOf(lea, made.body.id)).size).toBe(30 * MiB);
    expect((await stack.rest('GET', '/quota', { token: leaT })).body.usedMb).toBe(30);
    // Its intent reserved 10 MB more; the failed outcome gave them back.
    expect((await historyOf(made.body.id)).slice(-2)).toMatchObject([
      { type: 'StorageImageResizeRequested', data: { fromMb: 30, toMb: 40 } },
      { type: 'StorageImageResizeFailed', data: { fromMb: 30, toMb: 40 } },
    ]);
  });

  test('an attached non-virtio image is refused (image_attached); a failed image cannot grow (image_resize)', async () => {
    const ida = 323;
    const idaT = await stack.token(ida);
    const portal = await stack.token(9, { portal: true });
    const made = await create(idaT, { sizeMb: 4, diskController: 'sata' });
    await settled(idaT, made.body.id);
    expect((await stack.rest('POST', '/vms/3230/disks', { token: portal, body: { userId: ida, storageImageIds: [made.body.id] } })).status).toBe(200);
    const reply = await stack.rest('POST', `/storage-images/${made.body.id}/resize`, { token: idaT, body: { sizeMb: 8 } });
    expect([reply.status, reply.body.error?.code]).toEqual([409, 'image_attached']);

    const jo = 324;
    const joT = await stack.token(jo);
    blockStorageOf(jo);
    const failed = await create(joT, { sizeMb: 4 });
    expect((await settled(joT, failed.body.id)).state).toBe('failed');
    const refused = await stack.rest('POST', `/storage-images/${failed.body.id}/resize`, { token: joT, body: { sizeMb: 8 } });
    expect([refused.status, refused.body.error?.code]).toEqual([409, 'image_resize']);
    unblockStorageOf(jo);
    expect(existsSync(fileOf(jo, failed.body.id))).toBe(false);
  });
});

describe('npm run ops -- repair / quota (against the running local stack)', () => {
  const ops = (...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), ['ops/cli.ts', ...args], { cwd: REPO_ROOT, env: { ...process.env, CC1_DATA_DIR: stack.dataDir } }, (error, out, err) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out, err }),
      );
    });

  test('quota set/get, retry and force-revoke of a failed image, as the system with reason forced', async () => {
    const kim = 331;
    const kimT = await stack.token(kim);
    expect((await ops('quota', 'set', String(kim), '20')).code).toBe(0);
    expect(JSON.parse((await ops('quota', 'get', String(kim))).out)).toEqual({ userId: kim, limitMb: 20, usedMb: 0, ownLimit: true });
    expect((await create(kimT, { sizeMb: 30 })).status).toBe(409);

    blockStorageOf(kim);
    const made = await create(kimT, { sizeMb: 15 });
    expect((await settled(kimT, made.body.id)).state).toBe('failed');
    const refused = await ops('repair', 'force-detach', String(made.body.id));
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('storage_image_detach');
    const revoked = await ops('repair', 'force-revoke', String(made.body.id));
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.out).state).toBe('locked');
    expect((await stack.rest('GET', '/quota', { token: kimT })).body).toEqual({ limitMb: 20, usedMb: 0 });
    const history = await stack.rest('GET', `/admin/storage-images/${made.body.id}`, { token: admin });
    expect(history.body.state).toBe('locked');
    unblockStorageOf(kim);
    expect((await ops('repair', 'explode', '1')).code).toBe(2);
  });
});

