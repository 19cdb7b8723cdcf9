/**
 * A child process for the fault tests: runs ONE attach or detach through the real
 * application code against the test's DynamoDB Local and Run Command endpoints, and stops
 * dead at a chosen point (right after the intent step, virsh attach-disk, the Attached
 * step, virsh detach-disk or the Detached step): it prints `PAUSED <point>` and waits
 * to be SIGKILLed, or SIGKILLs itself. Nothing after that point is written, as in a
 * real crash. Started by runChildUntil (faultsDeps.ts) with tsx.
 *
 * Env: CC1_FAULT_ENDPOINTS {dynamodbEndpoint, ssmEndpoint, prefix, storagePath, storageHostId},
 *      CC1_FAULT_RUN {action, imageId, vmId, userId, point, kill?}.
 */
import './faultsEnv';
import { attachImage, detachImage, type ServiceDeps } from '../../application/storageImages';
import type { StoredEvent } from '../../application/storePorts';
import { readConfig } from '../../functions/shared/config';
import { buildContainer } from '../../functions/shared/container';
import { hostsOverSsm } from '../../functions/shared/hostsOverSsm';
import type { ChildEndpoints, ChildRun, KillPoint } from './faultsDeps';

const endpoints = JSON.parse(process.env.CC1_FAULT_ENDPOINTS ?? '{}') as ChildEndpoints;
const run = JSON.parse(process.env.CC1_FAULT_RUN ?? '{}') as ChildRun;

const stopHere = async (point: KillPoint): Promise<void> => {
  if (point !== run.point) return;
  process.stdout.write(`PAUSED ${point}\n`);
  if (run.kill === 'self') process.kill(process.pid, 'SIGKILL');
  setInterval(() => undefined, 1 << 30); // keep the process alive until it is killed
  await new Promise(() => undefined);
};

const main = async () => {
  const { deps } = buildContainer({
    ...readConfig({}),
    tablePrefix: endpoints.prefix,
    dynamodbEndpoint: endpoints.dynamodbEndpoint,
    ssmEndpoint: endpoints.ssmEndpoint,
    storagePath: endpoints.storagePath,
    storageHostId: endpoints.storageHostId,
    hostCommandPollMs: 25,
  }, { hosts: hostsOverSsm });
  const after = <T extends object, K extends keyof T>(target: T, method: K, point: (result: unknown, args: unknown[]) => KillPoint | undefined): T =>
    new Proxy(target, {
      get(t, p) {
        const v = Reflect.get(t, p) as unknown;
        if (p !== method || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
        return async (...args: unknown[]) => {
          const result = await (v as (...a: unknown[]) => Promise<unknown>).apply(t, args);
          const at = point(result, args);
          if (at) await stopHere(at);
          return result;
        };
      },
    });
  const wrapped: ServiceDeps = {
    ...deps,
    events: after(deps.events, 'commit', (stored) => {
      const type = (stored as StoredEvent[])[0]?.type;
      const points: Record<string, KillPoint> = {
        StorageImageAttachRequested: 'after-requested',
        StorageImageAttached: 'after-attached',
        StorageImageDetached: 'after-detached',
      };
      return type ? points[type] : undefined;
    }),
    hypervisor: {
      attachDisk: async (r) => {
        await deps.hypervisor.attachDisk(r);
        await stopHere('after-virsh');
      },
      detachDisk: async (r) => {
        await deps.hypervisor.detachDisk(r);
        await stopHere('after-virsh-detach');
      },
      listDisks: (t) => deps.hypervisor.listDisks(t),
      resizeDisk: (r) => deps.hypervisor.resizeDisk(r),
    },
  };
  const actor = { kind: 'user' as const, userId: run.userId };
  if (run.action === 'attach') await attachImage(wrapped, run.imageId, run.vmId, actor);
  else await detachImage(wrapped, run.imageId, run.vmId, actor);
  process.stdout.write(`FINISHED without reaching ${run.point}\n`);
  process.exit(3);
};

main().catch((error: unknown) => {
  process.stdout.write(`FAILED ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(4);
});
