/**
 * Fault injection for the fault tests:
 * - `withFault(deps, plan)`: the same adapters, wrapped so that the n-th call of one
 *   operation (`events.commit`, one command step's transaction; `hypervisor.attachDisk`,
 *   ...) fails. `throw` fails that one call (a throttled write, a lost reply: `after`
 *   means the transaction or the virsh command happened and only the answer was lost);
 *   `crash` also fails every later call of the request, as if the process had died there.
 * - `throttleDynamo(client, ...)`: a DynamoDB client middleware that answers the n-th
 *   request of a command with ProvisionedThroughputExceededException, below the SDK's
 *   retry (so a few throttles are absorbed by the SDK's retries, more fail the call).
 * - `runChildUntil(...)`: runs an attach or detach in a child process
 *   (test/support/faultsChild.ts) and SIGKILLs it at a chosen point.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ProvisionedThroughputExceededException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HostCommandError } from '../../application/ports';
import type { ServiceDeps } from '../../application/storageImages';

export class InjectedFault extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InjectedFault';
  }
}

export type FaultOp = 'events.load' | 'events.commit' | 'vms.get' | 'hypervisor.attachDisk' | 'hypervisor.detachDisk' | 'hypervisor.listDisks';

export interface FaultPlan {
  op: FaultOp;
  /** Which call of `op` within the request (1-based, default 1). */
  nth?: number;
  /** Fail before the call runs, or after it ran (the answer lost). */
  when: 'before' | 'after';
  /** `throw`: this call fails; `crash`: the process "dies" here (every later call fails too). */
  mode: 'throw' | 'crash';
  /** Only calls whose arguments match (e.g. the commit of one event type: commitOf). */
  match?: (args: unknown[]) => boolean;
}

/** Matches the commit of a step whose event is of `type` (e.g. 'StorageImageAttached'). */
export const commitOf =
  (type: string) =>
  (args: unknown[]): boolean =>
    (args[0] as Array<{ event: { type: string } }>)[0]?.event.type === type;

export interface Faulty {
  deps: ServiceDeps;
  readonly fired: boolean;
  calls: string[];
}

/** What a failing call throws: what the real adapter would throw for such a failure. */
const errorFor = (op: FaultOp, when: 'before' | 'after'): Error => {
  if (op.startsWith('hypervisor.')) {
    return when === 'after'
      ? new HostCommandError('timeout', `${op}: injected: the command ran, the answer was lost`)
      : new HostCommandError('unreachable', `${op}: injected: the host could not be asked`);
  }
  return new ProvisionedThroughputExceededException({ message: `${op}: injected throttling (${when})`, $metadata: { httpStatusCode: 400 } });
};

export const withFault = (deps: ServiceDeps, plan: FaultPlan): Faulty => {
  const state = { fired: false, dead: false };
  const calls: string[] = [];
  const counts = new Map<string, number>();
  const wrap = <T extends object>(name: string, target: T): T =>
    new Proxy(target, {
      get(t, p) {
        const v = Reflect.get(t, p) as unknown;
        if (typeof v !== 'function' || typeof p !== 'string') return v;
        const op = `${name}.${p}`;
        return (...args: unknown[]) => {
          if (state.dead) return Promise.reject(new InjectedFault(`${op}: the process has crashed`));
          calls.push(op);
          const hit = !state.fired && op === plan.op && (!plan.match || plan.match(args));
          const n = hit ? (counts.get(op) ?? 0) + 1 : 0;
          if (hit) counts.set(op, n);
          if (!hit || n !== (plan.nth ?? 1)) return (v as (...a: unknown[]) => unknown).apply(t, args);
          state.fired = true;
          const error = plan.mode === 'crash' ? new InjectedFault(`${op}: crashed ${plan.when} the call`) : errorFor(plan.op, plan.when);
          if (plan.when === 'before') {
            if (plan.mode === 'crash') state.dead = true;
            return Promise.reject(error);
          }
          return Promise.resolve((v as (...a: unknown[]) => unknown).apply(t, args)).then(() => {
            if (plan.mode === 'crash') state.dead = true;
            throw error;
          });
        };
      },
    });
  const faulty: ServiceDeps = {
    ...deps,
    events: wrap('events', deps.events),
    vms: wrap('vms', deps.vms),
    hypervisor: wrap('hypervisor', deps.hypervisor),
    readModel: wrap('readModel', deps.readModel),
    quota: wrap('quota', deps.quota),
    ids: wrap('ids', deps.ids),
  };
  return {
    deps: faulty,
    get fired() {
      return state.fired;
    },
    calls,
  };
};

/** Throttles the `from`-th .. (`from`+`times`-1)-th request of `command` (e.g. `PutItemCommand`) from now on. */
export const throttleDynamo = (client: DynamoDBClient, o: { command: string; from: number; times: number }) => {
  const name = `faults-throttle-${Math.random().toString(36).slice(2)}`;
  let seen = 0;
  let injected = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === o.command) {
        seen++;
        if (seen >= o.from && injected < o.times) {
          injected++;
          throw new ProvisionedThroughputExceededException({ message: 'injected by the fault test', $metadata: { httpStatusCode: 400 } });
        }
      }
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name },
  );
  return {
    get injected() {
      return injected;
    },
    get seen() {
      return seen;
    },
    remove: () => client.middlewareStack.remove(name),
  };
};

// ---------------------------------------------------------------------------
// A request in a child process, killed at a chosen point

/** Right after: the intent step (AttachRequested + claim), virsh attach, the outcome step (Attached), virsh detach, the Detached step. */
export type KillPoint = 'after-requested' | 'after-virsh' | 'after-attached' | 'after-virsh-detach' | 'after-detached';

export interface ChildEndpoints {
  dynamodbEndpoint: string;
  ssmEndpoint: string;
  prefix: string;
  storagePath: string;
  storageHostId: string;
}

export interface ChildRun {
  action: 'attach' | 'detach';
  imageId: number;
  vmId: number;
  userId: number;
  point: KillPoint;
  /** `pause`: the child stops at the point and this side SIGKILLs it; `self`: the child SIGKILLs itself. */
  kill?: 'pause' | 'self';
}

const ROOT = join(__dirname, '..', '..');
// tsx's loader in this very process (not the tsx CLI, which would run the script in a
// grandchild that a SIGKILL of the CLI leaves running).
const TSX = ['--require', join(ROOT, 'node_modules', 'tsx', 'dist', 'preflight.cjs'), '--import', pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href];
const CHILD = join(__dirname, 'faultsChild.ts');

/** Resolves with the signal that ended the child (SIGKILL) and its output; rejects if it never reached the point. */
export const runChildUntil = (endpoints: ChildEndpoints, run: ChildRun, timeoutMs = 90_000): Promise<{ signal: string | null; output: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TSX, CHILD], {
      cwd: ROOT,
      env: {
        ...process.env,
        CC1_FAULT_ENDPOINTS: JSON.stringify(endpoints),
        CC1_FAULT_RUN: JSON.stringify(run),
        POWERTOOLS_LOG_LEVEL: 'ERROR',
        POWERTOOLS_METRICS_DISABLED: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`PAUSED ${run.point}`) && (run.kill ?? 'pause') === 'pause') child.kill('SIGKILL');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && output.includes(`PAUSED ${run.point}`)) resolve({ signal, output });
      else reject(new Error(`the child did not stop at ${run.point} (exit ${code}, signal ${signal}):\n${output}`));
    });
  });
