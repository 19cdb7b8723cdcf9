/**
 * A request that outlives the function's time limit (docs/reliability.md, bug 5): it
 * answered 500; it must answer 503, and say whose fault it is. Only a request that ran
 * virsh on a hypervisor host (attach, detach) answers `hypervisor_unavailable`; any other
 * route (a read under overload) answers `timeout`, so that overload never passes for a
 * host's fault. Both APIs, through the local HTTP server, with a 1.5 s Lambda time; the
 * CC1 API answers both as CC1 did, HTTP 200 `cm_error`, with the reason in `data`.
 *
 * The slowness is real where it can be: the simulated host sleeps before it answers
 * (`setDomainDelay`). A slow read is the read model held until the reply came back.
 */
import '../../local/localDefaults';
import { createImage } from '../../application/storageImages';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { setDomainDelay } from '../../local/simulatedVirsh/simulatedHosts';
import { makeTokens, putVmEvents, RawClient, sleep, vmDetail, type Tokens } from '../support/reliability';

const OWNER = 7301;
const VM = 7311;
const LAMBDA_MS = 1_500;
/** The host answers long after the function's time, well within the host command's own bound. */
const HOST_DELAY_MS = 5_000;

let stack: LocalStack;
let client: RawClient;
let tokens: Tokens;

beforeAll(async () => {
  stack = await startLocalStack({ hypervisor: 'simulated', lambdaTimeoutMs: LAMBDA_MS, config: { hostCommandTimeoutMs: 60_000 } });
  client = new RawClient(stack.url, 4);
  tokens = await makeTokens({ owner: OWNER, other: OWNER + 1, portal: OWNER + 2, admin: OWNER + 3 });
  expect((await putVmEvents(client, [vmDetail(VM, OWNER, 'running')])).status).toBe(200);
});

afterAll(async () => {
  client?.close();
  await stack?.close();
});

const readyImage = async (name: string) => {
  const view = await createImage(stack.container.deps, { name, description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 1 }, { kind: 'user', userId: OWNER });
  await stack.drain();
  return view.id;
};

/** Waits (bounded) until the attach that outlived its function has written its outcome, so nothing runs on after the test. */
const settled = async (imageId: number) => {
  for (let i = 0; i < 200; i++) {
    const { events } = await stack.container.deps.events.readStream(`image-${imageId}`);
    if (events.at(-1)?.type !== 'StorageImageAttachRequested') return events.map((e) => e.type);
    await sleep(100);
  }
  throw new Error(`image ${imageId}: the attach never finished`);
};

/** Holds every read-model listing until released: a read that cannot finish in time. */
const holdListings = () => {
  const readModel = stack.container.deps.readModel;
  const original = { listByOwner: readModel.listByOwner, listAll: readModel.listAll };
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  readModel.listByOwner = async (...args) => (await released, original.listByOwner.apply(readModel, args));
  readModel.listAll = async (...args) => (await released, original.listAll.apply(readModel, args));
  return () => {
    release();
    Object.assign(readModel, original);
  };
};

test('REST: an attach whose host answers after the function time is a 503 hypervisor_unavailable, not a 500', async () => {
  const id = await readyImage('slow host');
  await setDomainDelay(stack.simulatedStateFile, `vm-${VM}-${OWNER}`, HOST_DELAY_MS);
  try {
    const reply = await client.send({ method: 'POST', path: `/storage-images/${id}/attach`, token: tokens.owner, body: { vmId: VM } });
    expect({ status: reply.status, code: (reply.json as { error?: { code?: string } }).error?.code }).toEqual({ status: 503, code: 'hypervisor_unavailable' });
  } finally {
    await setDomainDelay(stack.simulatedStateFile, `vm-${VM}-${OWNER}`, 0);
  }
  // The work went on after the reply (as on Lambda it may): it ends attached, nothing half-done.
  expect(await settled(id)).toEqual(['StorageImageCreated', 'StorageImageDiskReady', 'StorageImageAttachRequested', 'StorageImageAttached']);
});

test('REST: a read that cannot finish in time is a 503 timeout, never hypervisor_unavailable', async () => {
  const release = holdListings();
  try {
    for (const path of ['/storage-images', '/admin/storage-images']) {
      const token = path.startsWith('/admin') ? tokens.admin : tokens.owner;
      const reply = await client.send({ method: 'GET', path, token });
      expect({ path, status: reply.status, code: (reply.json as { error?: { code?: string } }).error?.code }).toEqual({ path, status: 503, code: 'timeout' });
    }
  } finally {
    release();
  }
  // Released, the same read answers.
  expect((await client.send({ method: 'GET', path: '/storage-images', token: tokens.owner })).status).toBe(200);
});

test('CC1: both timeouts are HTTP 200 cm_error, as CC1 answered; the reason says which (attach: hypervisor_unavailable; get_list: timeout)', async () => {
  const id = await readyImage('slow host cc1');
  await setDomainDelay(stack.simulatedStateFile, `vm-${VM}-${OWNER}`, HOST_DELAY_MS);
  try {
    const reply = await client.send({ method: 'POST', path: '/user/storage_image/attach/', token: tokens.owner, body: { caller_id: OWNER, storage_image_id: id, vm_id: VM } });
    expect({ http: reply.status, body: reply.json }).toEqual({ http: 200, body: { status: 'cm_error', data: expect.stringMatching(/^hypervisor_unavailable: /) } });
  } finally {
    await setDomainDelay(stack.simulatedStateFile, `vm-${VM}-${OWNER}`, 0);
  }
  await settled(id);

  const release = holdListings();
  try {
    const reply = await client.send({ method: 'POST', path: '/user/storage_image/get_list/', token: tokens.owner, body: { caller_id: OWNER } });
    expect({ http: reply.status, body: reply.json }).toEqual({ http: 200, body: { status: 'cm_error', data: expect.stringMatching(/^timeout: /) } });
  } finally {
    release();
  }
});
