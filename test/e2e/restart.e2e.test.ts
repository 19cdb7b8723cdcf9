/**
 * Data kept across restarts: stop `tsx local/main.ts`, start it again on the same
 * CC1_DATA_DIR, and the images, their attachments, history, ids and quota are there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

jest.setTimeout(90_000);

const USER = 701;
const VM = 7001;
const dataDir = mkdtempSync(join(tmpdir(), 'cc1-e2e-restart-'));
let stack: E2eStack | undefined;
let firstId = 0;
let nextId = 0;

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('images, attachment, history, id counter and quota survive a stop and start on the same data folder', async () => {
  stack = await startE2eStack({ dataDir, env: { DEFAULT_QUOTA_MB: '100' } });
  const token = await stack.token(USER);
  const created = await stack.rest('POST', '/storage-images', { token, body: { name: 'persistent', description: 'kept', diskController: 'virtio', sizeMb: 60 } });
  expect(created.status).toBe(201);
  const id = created.body.id as number;
  firstId = id;
  await waitFor(() => stack!.rest('GET', `/storage-images/${id}`, { token }), (r) => r.body.state === 'ok');
  await stack.putVmEvent({ vmId: VM, userId: USER, state: 'running' });
  const attached = await stack.rest('POST', `/storage-images/${id}/attach`, { token, body: { vmId: VM } });
  expect(attached.body).toMatchObject({ vmId: VM, diskDev: 'vdb' });
  const before = await stack.rest('GET', `/storage-images/${id}`, { token });
  const historyBefore = await stack.rest('GET', `/storage-images/${id}/history`, { token });
  const firstUrl = stack.url;
  await stack.stop();
  // The first process is really gone (nothing answers where it listened): what the second one
  // shows below can only come from the data folder.
  await expect(fetch(`${firstUrl}/disk-controllers`)).rejects.toThrow();

  stack = await startE2eStack({ dataDir, env: { DEFAULT_QUOTA_MB: '100' } });
  expect(stack.output()).toContain(`Data: ${dataDir}`);
  expect(stack.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const after = await stack.rest('GET', `/storage-images/${id}`, { token });
  expect(after.status).toBe(200);
  expect(after.body).toEqual(before.body);
  const list = await stack.rest('GET', '/storage-images', { token });
  expect(list.body.items).toEqual([before.body]);
  expect((await stack.rest('GET', `/storage-images/${id}/history`, { token })).body).toEqual(historyBefore.body);

  // The quota ledger survived: 60 of 100 MB used.
  const over = await stack.rest('POST', '/storage-images', { token, body: { name: 'over', diskController: 'virtio', sizeMb: 50 } });
  expect(over.status).toBe(409);
  expect(over.body.error.code).toBe('user_storage_limit');
  // The id counter survived: a new image gets a new id.
  const next = await stack.rest('POST', '/storage-images', { token, body: { name: 'next', diskController: 'virtio', sizeMb: 10 } });
  expect(next.status).toBe(201);
  expect(next.body.id).not.toBe(id);
  nextId = next.body.id;
  await waitFor(() => stack!.rest('GET', `/storage-images/${nextId}`, { token }), (r) => r.body.state === 'ok');
});

// The VM directory survives the restart, and so does the way to its host.
test('after the restart, a hot attach to the VM that was running before takes the next device', async () => {
  const token = await stack!.token(USER);
  const second = await stack!.rest('POST', `/storage-images/${nextId}/attach`, { token, body: { vmId: VM } });
  expect(second.status).toBe(200);
  expect(second.body).toMatchObject({ vmId: VM, diskDev: 'vdc' });
});

test('after the restart, the VM directory still knows the VM: its stop detaches the image attached before', async () => {
  const token = await stack!.token(USER);
  await stack!.putVmEvent({ vmId: VM, userId: USER, state: 'stopped' });
  const image = await stack!.rest('GET', `/storage-images/${firstId}`, { token });
  expect(image.body).toMatchObject({ vmId: null, diskDev: null });
  const last = (await stack!.rest('GET', `/storage-images/${firstId}/history`, { token })).body.items.at(-1);
  expect(last).toMatchObject({ type: 'StorageImageDetached', cause: { kind: 'system', reason: 'vm-stopped' } });
});
