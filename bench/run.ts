/**
 * `npm run bench`: the 7 figures of issue 7, each against a baseline measured in this
 * same run on the same embedded dynalite server (in memory). The local stack runs in
 * a child process (bench/stackProcess.ts) whose dynalite serves every figure, so its
 * memory (figure 7) is the stack's own. Prints a table and writes bench/results.json;
 * the last line is `bench: N/7 figures meet their targets`. See docs/benchmarks.md.
 *
 * Order: 5+7 first (the stack's memory before the store figures fill dynalite),
 * then 2 while the 100,000-event stream of 3 is written in the background (counts do
 * not depend on speed), then 3, 1, 4; 6 last (no DynamoDB).
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { runAppend } from './append';
import { runColdStart } from './coldStart';
import { runHttp } from './http';
import { log, round, type FigureResult } from './lib';
import { fillLoadCost, runLoadCost } from './loadCost';
import { runRebuild } from './rebuild';
import { runRoundTrips } from './roundTrips';
import { startStackProcess } from './stackClient';
import { benchDynamo } from './store';

process.env.NODE_NO_WARNINGS = '1';

const main = async () => {
  const started = Date.now();
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
  log(`local stack pid ${stack.info.pid} at ${stack.info.url}, dynalite ${stack.info.endpoint}, hypervisor ${stack.info.hypervisor}`);
  const db = benchDynamo(stack.info.endpoint);
  try {
    await attempt([5, 7], () => runHttp(stack));
    const fill = fillLoadCost(db, Number(process.env.BENCH_LONG_STREAM ?? 100_000));
    fill.catch(() => undefined);
    await attempt([2], () => runRoundTrips(stack));
    // The store figures do not use the stack's own tables: its feeds would only add noise.
    await stack.call('feeds', { on: false });
    await attempt([3], async () => runLoadCost(db, await fill));
    await attempt([1], () => runAppend(db));
    await attempt([4], () => runRebuild(db));
  } finally {
    db.close();
    await stack.close();
  }
  await attempt([6], () => runColdStart({ runs: 7 }));

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
    JSON.stringify({ time: new Date().toISOString(), seconds: round(seconds, 1), node: process.version, cpus: cpus().length, loadAverageAtStart: load, passed, figures: results.sort((a, b) => a.id - b.id), errors }, null, 2) + '\n',
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
      console.log(`  ${command.padEnd(7)} all ${String(c.requests).padEnd(5)} [${kinds}]  claim writes ${c.claimWrites}, read-model writes ${c.readModelWrites}, pointer reads ${c.pointerReads}  compared ${c.compared} vs ${c.target}: ${c.pass ? 'PASS' : 'FAIL'}`);
    }
  }
  const fig6 = results.find((r) => r.id === 6);
  if (fig6) {
    console.log('\nfigure 6, bundles (baseline: a handler creating a DynamoDBClient):');
    for (const [name, f] of Object.entries((fig6.details as { functions: Record<string, any> }).functions)) {
      console.log(`  ${name.padEnd(10)} clients ${f.clientsInBundle.join('+').padEnd(26)} size ${String(f.sizeRatio).padEnd(5)}x import ${String(f.importRatio).padEnd(5)}x ${f.targetApplies ? (f.pass ? 'PASS' : 'FAIL') : '(two clients needed: no target)'}${f.clientsNotNeeded ? `  not needed: ${f.clientsNotNeeded.join(', ')}` : ''}`);
    }
  }
  console.log(`\nresults: bench/results.json (${round(seconds, 0)} s)`);
  console.log(`bench: ${passed}/7 figures meet their targets`);
};

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
