/**
 * The reconciler runs on a schedule locally too, as its EventBridge rule runs it on AWS
 * (issue 19: locally nothing ran it, so a half-done host change stayed until an operator
 * ran it by hand). Here a disk leaves the domain behind the service's back (as a detach cut
 * between virsh and its outcome would leave it); the schedule repairs the records alone.
 */
import '../../local/localDefaults';
import { spawnSync } from 'node:child_process';
import { attachImage, createImage } from '../../application/storageImages';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { SIMULATED_STATE_ENV, SIMULATED_VIRSH } from '../../local/simulatedVirsh/simulatedHosts';
import { makeTokens, putVmEvents, RawClient, vmDetail } from '../support/reliability';
import { waitFor } from '../support/e2eStack';

const OWNER = 7501;
const VM = 7511;
let stack: LocalStack;
let client: RawClient;

beforeAll(async () => {
  stack = await startLocalStack({ hypervisor: 'simulated', reconcileIntervalMs: 300, reconcileSettleMs: 500 });
  client = new RawClient(stack.url, 2);
  await makeTokens({ owner: OWNER, other: OWNER + 1, portal: OWNER + 2, admin: OWNER + 3 });
  expect((await putVmEvents(client, [vmDetail(VM, OWNER, 'running')])).status).toBe(200);
});
afterAll(async () => {
  client?.close();
  await stack?.close();
});

test('a disk gone from the host is detached in the records by the scheduled reconciler, with no operator', async () => {
  const owner = { kind: 'user', userId: OWNER } as const;
  const image = await createImage(stack.container.deps, { name: 'scheduled', description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 1 }, owner);
  await stack.drain();
  const attached = await attachImage(stack.container.deps, image.id, VM, owner);
  expect(attached.diskDev).toBe('vdb');
  const virsh = spawnSync(SIMULATED_VIRSH, ['detach-disk', `vm-${VM}-${OWNER}`, 'vdb', '--live'], { env: { ...process.env, [SIMULATED_STATE_ENV]: stack.simulatedStateFile }, encoding: 'utf8' });
  expect(virsh.status).toBe(0);
  const history = await waitFor(
    () => stack.container.deps.events.readStream(`image-${image.id}`),
    ({ events }) => events.at(-1)?.type === 'StorageImageDetached',
    20_000,
    100,
  );
  expect(history.events.at(-1)?.cause).toEqual({ kind: 'system', reason: 'reconciled' });
});
