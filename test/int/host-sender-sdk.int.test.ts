/**
 * The host sender's real transport (issue 12): spool records as the qemu hook writes
 * them, sent by SpoolSender through `SdkEventTransport.create()` (the real
 * `@aws-sdk/client-eventbridge`, AWS JSON 1.1, SigV4, `X-Amz-Target: AWSEvents.PutEvents`)
 * to the local stack's events entry, started as `npm start` runs (tsx local/main.ts).
 * What the service does with them is checked over HTTP: the VM becomes known and running
 * (an attach works), and its stop auto-detaches the disk.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SdkEventTransport, SpoolSender } from '../../host/sender';
import { HOST_ID, startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

const USER = 7401;
const VM = 7411;

let stack: E2eStack;
let spool: string;
let token: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  stack = await startE2eStack();
  token = await stack.token(USER);
  spool = mkdtempSync(join(tmpdir(), 'cc1-spool-sdk-'));
  // On a host the credentials come from its role; the local entry does not check the signature.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' });
});

afterAll(async () => {
  process.env = savedEnv;
  await stack?.stop();
  if (spool) rmSync(spool, { recursive: true, force: true });
});

/** A record as host/qemu-hook spools it. */
const spoolRecord = (state: 'running' | 'stopped', time: string, reason?: string) =>
  writeFileSync(
    join(spool, `${time.replace(/[-:.]/g, '')}-${VM}-${state}.json`),
    JSON.stringify({ vmId: VM, userId: USER, domain: `vm-${VM}-${USER}`, hostId: HOST_ID, state, ...(reason ? { reason } : {}), time }) + '\n',
  );

const sender = () =>
  new SpoolSender({
    spoolDir: spool,
    busName: 'default',
    transport: SdkEventTransport.create({ region: 'us-east-1', endpoint: `${stack.url}/_local/events` }),
    maxAttempts: 2,
    sleep: async () => undefined,
  });

test('a "running" record sent through the SDK makes the VM known and running: an attach to it works', async () => {
  const created = await stack.rest('POST', '/storage-images', { token, body: { name: 'sdk', diskController: 'virtio', sizeMb: 1 } });
  expect(created.status).toBe(201);
  const id = created.body.id as number;
  await waitFor(() => stack.rest('GET', `/storage-images/${id}`, { token }), (r) => r.body.state === 'ok');

  // Before the event, the VM is unknown.
  expect((await stack.rest('POST', `/storage-images/${id}/attach`, { token, body: { vmId: VM } })).body.error?.code).toBe('vm_get');

  spoolRecord('running', new Date(Date.now() - 1000).toISOString());
  const result = await sender().runOnce();
  expect(result).toEqual({ sent: 1, failed: 0, remaining: 0 });
  expect(readdirSync(spool).filter((f) => f.endsWith('.json'))).toEqual([]); // removed once accepted

  const attached = await stack.rest('POST', `/storage-images/${id}/attach`, { token, body: { vmId: VM } });
  expect(attached.status).toBe(200);
  expect(attached.body).toMatchObject({ vmId: VM, diskDev: 'vdb' });
});

test('a "stopped" record sent through the SDK auto-detaches the VM\'s disk (cause system, vm-stopped)', async () => {
  const list = await stack.rest('GET', '/storage-images', { token });
  const image = (list.body.items as Array<{ id: number; vmId: number | null }>).find((i) => i.vmId === VM)!;
  expect(image).toBeDefined();

  spoolRecord('stopped', new Date().toISOString(), 'shutdown');
  expect(await sender().runOnce()).toEqual({ sent: 1, failed: 0, remaining: 0 });

  expect((await stack.rest('GET', `/storage-images/${image.id}`, { token })).body).toMatchObject({ vmId: null, diskDev: null });
  const history = (await stack.rest('GET', `/storage-images/${image.id}/history`, { token })).body.items;
  expect(history.at(-1)).toMatchObject({ type: 'StorageImageDetached', cause: { kind: 'system', reason: 'vm-stopped' } });
});

test('PutEvents through the SDK returns one result per entry: ids for accepted entries, error codes for malformed ones', async () => {
  const transport = SdkEventTransport.create({ region: 'us-east-1', endpoint: `${stack.url}/_local/events` });
  const results = await transport.put([
    { Source: 'someone.else', DetailType: 'Other', Detail: '{"x":1}', Time: new Date(), EventBusName: 'default' },
    { Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: 'not json', Time: new Date(), EventBusName: 'default' },
  ]);
  expect(results).toEqual([
    { ok: true, eventId: expect.any(String) },
    { ok: false, errorCode: 'MalformedDetail', errorMessage: expect.any(String) },
  ]);
});
