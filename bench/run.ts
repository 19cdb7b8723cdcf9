/**
 * `npm run bench`: the 7 figures, each against a baseline measured in this same run on
 * the same DynamoDB Local server (in memory). The local stack runs in a child process
 * (bench/stackProcess.ts); the DynamoDB Local JVM it starts serves every figure. Figure
 * 7 is the stack process's own peak (VmHWM), with the JVM's RSS beside it. Prints a
 * table and writes bench/results.json (with the git commit and the load average);
 * `npx tsx bench/report.ts` renders docs/benchmarks.md from that one file. The last
 * line is `bench: N/7 figures meet their targets`.
 *
 * Order: 5 first, then 2 while the 100,000-event stream of 3 is written in the
 * background (counts do not depend on speed), then 3, 1, 4 (stack feeds off); 7 just
 * before the stack closes; 6 last (no DynamoDB).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { runAppend } from './append';
import { runColdStart } from './coldStart';
import { runHttp, type HttpMemory } from './http';
import { log, round, type FigureResult } from './lib';
import { fillLoadCost, runLoadCost } from './loadCost';
import { runMemory } from './memory';
import { runRebuild } from './rebuild';
import { runRoundTrips } from './roundTrips';
import { startStackProcess } from './stackClient';
import { benchDynamo } from './store';

process.env.NODE_NO_WARNINGS = '1';

const main = async () => {
  const started = Date.now();
  // The commit measured: read before anything runs (a commit made during the run is not it).
  const git = (...args: string[]) => execFileSync('git', args, { cwd: join(__dirname, '..'), encoding: 'utf8' }).trim();
  const commit = git('rev-parse', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
  const load = loadavg();
  log(`${cpus().length} cpus, load average ${load.map((x) => round(x, 1)).join(' ')}`);
  const results: FigureResult[] = [];
  const errors: Record<number, string> = {};
  const attempt = async (ids: number[], fn: () => Promise<FigureResult | FigureResult[]>) => {
    try {
      const r = await fn();
      results.push(...(Array.isArray(r) ? r : [r]));
    } catch (error) {
      for (const id of ids) errors[id] = error instanceof Error ? error.message : String(error);
      log(`figure ${ids.join('+')} failed: ${errors[ids[0]!]}`);
    }
  };

  const stack = await startStackProcess();
  log(`local stack pid ${stack.info.pid} at ${stack.info.url}, DynamoDB Local ${stack.info.endpoint} (JVM pid ${stack.info.dynamoPid}), hypervisor ${stack.info.hypervisor}`);
  const db = benchDynamo(stack.info.endpoint);
  const during5: Partial<HttpMemory> = {};
  try {
    await attempt([5], () => runHttp(stack, during5));
    const fill = fillLoadCost(db, Number(process.env.BENCH_LONG_STREAM ?? 100_000));
    fill.catch(() => undefined);
    await attempt([2], () => runRoundTrips(stack));
    // The store figures do not use the stack's own tables: its feeds would only add noise.
    await stack.call('feeds', { on: false });
    await attempt([3], async () => runLoadCost(db, await fill));
    await attempt([1], () => runAppend(db));
    await attempt([4], () => runRebuild(db));
    await attempt([7], async () => runMemory(stack, during5));
  } finally {
    db.close();
    await stack.close();
  }
  await attempt([6], () => runColdStart({ runs: 11 }));
  const loadAtEnd = loadavg();
  log(`load average at the end ${loadAtEnd.map((x) => round(x, 1)).join(' ')}`);

  const rows = [1, 2, 3, 4, 5, 6, 7].map((id) => {
    const r = results.find((x) => x.id === id);
    return r
      ? { id, name: r.name, measured: r.shown, target: r.target, result: r.pass ? 'PASS' : 'FAIL' }
      : { id, name: `figure ${id}`, measured: `error: ${errors[id] ?? 'not run'}`, target: '', result: 'FAIL' };
  });
  const passed = rows.filter((r) => r.result === 'PASS').length;
  const seconds = (Date.now() - started) / 1000;
  writeFileSync(
    join(__dirname, 'results.json'),
    JSON.stringify({ time: new Date().toISOString(), commit, dirty, seconds: round(seconds, 1), node: process.version, cpus: cpus().length, loadAverageAtStart: load, loadAverageAtEnd: loadAtEnd, passed, failed: rows.filter((r) => r.result !== 'PASS').map((r) => r.id), figures: results.sort((a, b) => a.id - b.id), errors }, null, 2) + '\n',
  );

  const widths = [3, 72, 62, 64, 6];
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  console.log(line(['#', 'figure', 'measured', 'target', 'result']));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(line([String(r.id), r.name, r.measured, r.target, r.result]));
  const fig2 = results.find((r) => r.id === 2);
  if (fig2) {
    console.log('\nfigure 2, DynamoDB requests per command (mean):');
    console.log(`  ${(fig2.details as { counting: string }).counting}`);
    for (const [command, c] of Object.entries((fig2.details as { commands: Record<string, any> }).commands)) {
      const kinds = Object.entries(c.byKind as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', ');
      console.log(`  ${command.padEnd(7)} all ${String(c.requests).padEnd(5)} [${kinds}]  items written ${c.itemsWritten}, claim writes ${c.claimWrites}, read-model writes ${c.readModelWrites}, pointer reads ${c.pointerReads}  compared ${c.compared} vs ${c.target}: ${c.pass ? 'PASS' : 'FAIL'}`);
    }
  }
  const fig6 = results.find((r) => r.id === 6);
  if (fig6) {
    console.log('\nfigure 6, bundles as deployed (baselines: a handler creating the same SDK clients):');
    for (const [name, f] of Object.entries((fig6.details as { functions: Record<string, any> }).functions)) {
      console.log(`  ${name.padEnd(10)} vs ${f.baseline.padEnd(21)} ${String(f.sizeKiB).padStart(7)} KiB size ${String(f.sizeRatio).padEnd(5)}x import ${String(f.importMs).padStart(6)} ms ${String(f.importRatio).padEnd(5)}x ${f.targetApplies ? (f.pass ? 'PASS' : 'FAIL') : '(no target)'}${f.clientsNotNeeded ? `  not needed: ${f.clientsNotNeeded.join(', ')}` : ''}`);
      console.log(`             KiB by package: ${Object.entries(f.kibByPackage as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
    const z = (fig6.details as { zodAlone: { classic: { sizeKiB: number; importMs: number }; mini: { sizeKiB: number; importMs: number } } }).zodAlone;
    console.log(`  zod alone: classic ${z.classic.sizeKiB} KiB, import ${z.classic.importMs} ms; zod/mini ${z.mini.sizeKiB} KiB, import ${z.mini.importMs} ms`);
  }
  console.log(`\nresults: bench/results.json (${round(seconds, 0)} s)`);
  const missed = rows.filter((r) => r.result !== 'PASS').map((r) => r.id);
  console.log(`load average at start ${load.map((x) => round(x, 1)).join(' ')}, at the end ${loadAtEnd.map((x) => round(x, 1)).join(' ')}; commit ${commit.slice(0, 12)}${dirty ? ' (with uncommitted changes)' : ''}`);
  console.log(`bench: ${passed}/7 figures meet their targets${missed.length ? ` (not met: ${missed.map((id) => `figure ${id}`).join(', ')})` : ': every figure met'}`);
};

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
