/**
 * Figure 6, cold start: each Lambda entry (functions/<name>/handler.ts) bundled with
 * esbuild as the CDK stack does (infra/constructs/cc1Function.ts: CJS, node22,
 * minified, mainFields module/main, AWS SDK bundled), its size, the AWS clients its
 * metafile pulls in, and the time to `require()` it in a fresh Node process (median
 * of several runs), over a baseline bundle: a tiny handler that only creates a
 * DynamoDBClient.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { log, median, round, type FigureResult } from './lib';

const ROOT = resolve(__dirname, '..');

/**
 * The AWS clients each function's code actually calls (by what its use cases do),
 * to compare with what its bundle pulls in. The size/import targets apply to the
 * functions that need one client.
 */
export const CLIENTS_NEEDED: Record<string, string[]> = {
  restApi: ['client-dynamodb', 'client-ssm'], // attach/detach run virsh over SSM
  cc1Api: ['client-dynamodb', 'client-ssm'],
  diskFiles: ['client-dynamodb', 'client-ssm'], // the storage host makes files over SSM
  reconciler: ['client-dynamodb', 'client-ssm'], // domblklist over SSM
  projector: ['client-dynamodb'], // stream records -> read model
  vmEvents: ['client-dynamodb'], // VM directory + auto-detach in the records only (no virsh)
};

const BASELINE_SOURCE = `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
const client = new DynamoDBClient({});
export const handler = async () => ({ region: typeof client.config.region });
`;

interface Bundle {
  name: string;
  file: string;
  bytes: number;
  clients: string[];
}

const bundle = async (name: string, entry: string, outDir: string): Promise<Bundle> => {
  const outfile = join(outDir, name, 'index.js');
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    minify: true,
    format: 'cjs',
    mainFields: ['module', 'main'],
    sourcemap: false,
    metafile: true,
    treeShaking: true,
    tsconfig: join(ROOT, 'tsconfig.json'),
    logLevel: 'silent',
  });
  const clients = new Set<string>();
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = /node_modules\/@aws-sdk\/(client-[a-z0-9-]+)\//.exec(input);
    if (m) clients.add(m[1]!);
  }
  return { name, file: outfile, bytes: statSync(outfile).size, clients: [...clients].sort() };
};

/** ms to require the bundle, measured inside a fresh node (process start-up excluded). */
const importMs = (file: string): number => {
  const script = `const t=process.hrtime.bigint();require(${JSON.stringify(file)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
  const out = execFileSync(process.execPath, ['-e', script], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH ?? '', AWS_REGION: 'eu-west-1', NODE_PATH: '', NODE_NO_WARNINGS: '1' },
    encoding: 'utf8',
  });
  return Number(out);
};

export const runColdStart = async (options: { runs?: number } = {}): Promise<FigureResult> => {
  const runs = options.runs ?? 9;
  const outDir = mkdtempSync(join(tmpdir(), 'cc1-bench-bundles-'));
  try {
    const baselineEntry = join(outDir, 'baseline-src.ts');
    writeFileSync(baselineEntry, BASELINE_SOURCE);
    const names = readdirSync(join(ROOT, 'functions'))
      .filter((n) => n !== 'shared')
      .filter((n) => {
        try {
          return statSync(join(ROOT, 'functions', n, 'handler.ts')).isFile();
        } catch {
          return false;
        }
      })
      .sort();
    // The baseline resolves @aws-sdk from the project.
    const baseline = await esbuild
      .build({ stdin: { contents: BASELINE_SOURCE, resolveDir: ROOT, loader: 'ts' }, outfile: join(outDir, 'baseline', 'index.js'), bundle: true, platform: 'node', target: 'node22', minify: true, format: 'cjs', mainFields: ['module', 'main'], sourcemap: false, metafile: true, logLevel: 'silent' })
      .then(() => ({ name: 'baseline', file: join(outDir, 'baseline', 'index.js'), bytes: statSync(join(outDir, 'baseline', 'index.js')).size, clients: ['client-dynamodb'] }));
    const bundles: Bundle[] = [];
    for (const name of names) bundles.push(await bundle(name, join(ROOT, 'functions', name, 'handler.ts'), outDir));
    log(`cold start: bundled ${bundles.length} functions + baseline`);

    // Interleave the import runs so drift of the machine hits every bundle alike.
    const all = [baseline, ...bundles];
    const times = new Map<string, number[]>(all.map((b) => [b.name, []]));
    for (const b of all) importMs(b.file); // warm the page cache
    for (let r = 0; r < runs; r++) for (const b of all) times.get(b.name)!.push(importMs(b.file));
    const baseMs = median(times.get('baseline')!);

    const perFunction: Record<string, unknown> = {};
    let pass = true;
    let worstSize = 0;
    let worstImport = 0;
    for (const b of bundles) {
      const ms = median(times.get(b.name)!);
      const sizeRatio = b.bytes / baseline.bytes;
      const importRatio = ms / baseMs;
      const needed = CLIENTS_NEEDED[b.name] ?? b.clients;
      const unneeded = b.clients.filter((c) => !needed.includes(c));
      const oneClient = needed.length === 1;
      const ok = !oneClient || (sizeRatio <= 2.0 && importRatio <= 1.5);
      if (oneClient) {
        worstSize = Math.max(worstSize, sizeRatio);
        worstImport = Math.max(worstImport, importRatio);
      }
      pass &&= ok;
      perFunction[b.name] = {
        clientsInBundle: b.clients,
        clientsNeeded: needed,
        ...(unneeded.length ? { clientsNotNeeded: unneeded } : {}),
        targetApplies: oneClient,
        sizeKiB: round(b.bytes / 1024, 1),
        sizeRatio: round(sizeRatio),
        importMs: round(ms, 1),
        importRatio: round(importRatio),
        pass: oneClient ? ok : null,
      };
    }
    return {
      id: 6,
      name: 'cold start: bundle size / import time over a DynamoDB-client-only bundle',
      measured: Math.max(worstSize / 2.0, worstImport / 1.5),
      shown: `size ${round(worstSize)}x, import ${round(worstImport)}x (worst one-client function)`,
      target: 'size <= 2.0x, import <= 1.5x (one-client functions)',
      pass,
      details: { baseline: { sizeKiB: round(baseline.bytes / 1024, 1), importMs: round(baseMs, 1) }, runs, functions: perFunction },
    };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
};

if (require.main === module) {
  runColdStart().then((r) => console.log(JSON.stringify(r, null, 2)));
}
