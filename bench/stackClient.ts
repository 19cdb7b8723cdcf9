/** The parent's handle on bench/stackProcess.ts: fork it, call its ops over IPC, sample its RSS. */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StackInfo {
  url: string;
  endpoint: string;
  /** The DynamoDB Local JVM (a child of the stack process). */
  dynamoPid?: number;
  prefix: string;
  hypervisor: string;
  pid: number;
}

export interface StackHandle {
  info: StackInfo;
  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>;
  /** RSS of the stack process now, MB (from /proc, without asking it). */
  rssMb(): number;
  /** The stack process's own memory (VmRSS now, VmHWM = its peak so far) and the DynamoDB Local JVM's, MB, from /proc. */
  memory(): { stack: ProcMemory; jvm?: ProcMemory };
  close(): Promise<void>;
}

export interface ProcMemory {
  rssMb: number;
  peakMb: number;
}

/** VmRSS and VmHWM of a process, MB. */
export const procMemory = (pid: number): ProcMemory => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
};

export const startStackProcess = async (): Promise<StackHandle> => {
  const child: ChildProcess = fork(join(__dirname, 'stackProcess.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_NO_WARNINGS: '1', CC1_HYPERVISOR: 'simulated' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const pending = new Map<number, { ok: (v: unknown) => void; ko: (e: Error) => void }>();
  let ready: () => void = () => undefined;
  const readyP = new Promise<void>((ok, ko) => {
    ready = ok;
    child.once('exit', (code) => ko(new Error(`bench stack process exited (${code}) before it was ready`)));
  });
  child.on('message', (msg: { id: number; result?: unknown; error?: string }) => {
    if (msg.id === 0) return ready();
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.ko(new Error(msg.error));
    else p.ok(msg.result);
  });
  await readyP;
  const call = <T>(op: string, args?: Record<string, unknown>): Promise<T> =>
    new Promise<T>((ok, ko) => {
      const id = ++seq;
      pending.set(id, { ok: ok as (v: unknown) => void, ko });
      child.send({ id, op, args });
    });
  const info = await call<StackInfo>('info');
  return {
    info,
    call,
    rssMb: () => procMemory(child.pid!).rssMb,
    memory: () => ({ stack: procMemory(child.pid!), ...(info.dynamoPid ? { jvm: procMemory(info.dynamoPid) } : {}) }),
    close: async () => {
      const exited = new Promise((ok) => child.once('exit', ok));
      await call('close').catch(() => undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
};
