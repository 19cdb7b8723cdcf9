/**
 * Figure 5: requests/s and p99 latency of `GET /storage-images/{id}` through the local
 * API server (JWT check, API Gateway v2 event, middy stack, the stream-head GetItem)
 * over a bare node:http server in the same process doing the same DynamoDB GetItem,
 * autocannon with 32 connections, runs interleaved. While it runs, the memory of the
 * stack process and of the DynamoDB Local JVM is sampled from /proc every 50 ms, for
 * figure 7 (bench/memory.ts).
 */
import { signLocalToken } from '../local/jwt';
import { log, median, round, sleep, type FigureResult } from './lib';
import type { ProcMemory, StackHandle } from './stackClient';

/** What figure 5 saw of the memory (figure 7 reports it). */
export interface HttpMemory {
  stackRssMaxMb: number;
  stackRssAtStartMb: number;
  jvmRssMaxMb?: number;
  samples: number;
}

// autocannon ships no types: the part used here.
interface CannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<CannonResult>;

const CONNECTIONS = 32;

const cannon = async (url: string, seconds: number, headers: Record<string, string> = {}) => {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: seconds, headers });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`autocannon on ${url}: ${r.non2xx} non-2xx replies, ${r.errors} errors`);
  return { rps: r.requests.total / r.duration, p99: r.latency.p99, p50: r.latency.p50, total: r.requests.total };
};

export const runHttp = async (stack: StackHandle, memory: Partial<HttpMemory>, options: { seconds?: number; rounds?: number } = {}): Promise<FigureResult> => {
  const seconds = options.seconds ?? 5;
  const rounds = options.rounds ?? 2;
  const token = await signLocalToken({ userId: 7101 });
  const auth = { authorization: `Bearer ${token}` };
  const created = await fetch(`${stack.info.url}/storage-images`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench-http', diskController: 'virtio', filesystem: 'raw', sizeMb: 10 }),
  });
  if (created.status !== 201) throw new Error(`create for figure 5: HTTP ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: number };
  const { url: bareUrl } = await stack.call<{ url: string }>('bare:start');
  const stackTarget = `${stack.info.url}/storage-images/${id}`;
  const bareTarget = `${bareUrl}/storage-images/${id}`;
  // Same answer from both (the bare one is the raw stream head).
  const check = await fetch(stackTarget, { headers: auth });
  if (check.status !== 200) throw new Error(`GET through the stack: HTTP ${check.status}`);

  let peak = 0;
  let jvmPeak = 0;
  let samples = 0;
  const sampler = setInterval(() => {
    const m: { stack: ProcMemory; jvm?: ProcMemory } = stack.memory();
    samples++;
    peak = Math.max(peak, m.stack.rssMb);
    if (m.jvm) jvmPeak = Math.max(jvmPeak, m.jvm.rssMb);
  }, 50);
  const rssBefore = stack.rssMb();
  peak = rssBefore;
  const runs: { stack: Awaited<ReturnType<typeof cannon>>[]; bare: Awaited<ReturnType<typeof cannon>>[] } = { stack: [], bare: [] };
  try {
    log(`http: warm-up`);
    await cannon(bareTarget, 1);
    await cannon(stackTarget, 2, auth);
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so drift of the machine hits both alike.
      const order = r % 2 === 0 ? (['bare', 'stack'] as const) : (['stack', 'bare'] as const);
      for (const which of order) {
        runs[which].push(which === 'bare' ? await cannon(bareTarget, seconds) : await cannon(stackTarget, seconds, auth));
        log(`http: round ${r + 1} ${which}: ${round(runs[which].at(-1)!.rps, 0)} req/s, p99 ${runs[which].at(-1)!.p99} ms`);
        await sleep(200);
      }
    }
  } finally {
    clearInterval(sampler);
    await stack.call('bare:stop');
  }
  const sum = (xs: { rps: number }[]) => xs.reduce((a, x) => a + x.rps, 0) / xs.length;
  const stackRps = sum(runs.stack);
  const bareRps = sum(runs.bare);
  const stackP99 = median(runs.stack.map((x) => x.p99));
  const bareP99 = median(runs.bare.map((x) => x.p99));
  const rpsRatio = stackRps / bareRps;
  const p99Ratio = stackP99 / Math.max(bareP99, 1);
  Object.assign(memory, { stackRssMaxMb: round(peak, 1), stackRssAtStartMb: round(rssBefore, 1), ...(jvmPeak ? { jvmRssMaxMb: round(jvmPeak, 1) } : {}), samples });
  const fig5: FigureResult = {
    id: 5,
    name: 'HTTP GET /storage-images/{id}: local API server over bare node:http doing the same GetItem',
    measured: rpsRatio,
    shown: `${round(rpsRatio)}x req/s, p99 ${round(p99Ratio)}x`,
    target: 'req/s >= 0.50x, p99 <= 2.5x',
    pass: rpsRatio >= 0.5 && p99Ratio <= 2.5,
    details: {
      connections: CONNECTIONS,
      secondsPerRun: seconds,
      rounds,
      stack: { reqPerSec: round(stackRps, 0), p99Ms: stackP99, p50Ms: median(runs.stack.map((x) => x.p50)) },
      bare: { reqPerSec: round(bareRps, 0), p99Ms: bareP99, p50Ms: median(runs.bare.map((x) => x.p50)) },
      p99Ratio: round(p99Ratio),
      note: 'p99 of autocannon is at 1 ms resolution; the bare p99 is floored at 1 ms for the ratio',
    },
  };
  return fig5;
};
