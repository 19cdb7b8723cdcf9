/**
 * Figure 6, cold start: each Lambda entry (functions/<name>/handler.ts) bundled with
 * esbuild as the CDK stack deploys it (infra/constructs/cc1Function.ts: CJS, node22,
 * minified, mainFields module/main, tree shaking, AWS SDK bundled, source maps on as
 * SourceMapMode.DEFAULT: a linked `index.js.map` without sourcesContent), and run as
 * deployed: `node --enable-source-maps` (the functions' NODE_OPTIONS). Measured: the
 * bundle's size (index.js; the .map is reported beside it) and the time to `require()`
 * it in a fresh Node process (median of several interleaved runs), over a baseline
 * bundle built and run the same way that holds the same SDK clients as the function
 * needs: DynamoDB alone, or DynamoDB + SSM. The target applies to the one-client
 * functions and to the two API functions (restApi, cc1Api). For those two, the bytes
 * each package adds to the bundle are listed (the metafile), and the import time of
 * classic `zod` alone is measured against `zod/mini`.
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

/** The functions given a target: the one-client ones, and the two API functions against the two-client baseline. */
const TARGETED = (name: string, needed: string[]) => needed.length === 1 || name === 'restApi' || name === 'cc1Api';

const BASELINE_ONE = `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
const client = new DynamoDBClient({});
export const handler = async () => ({ region: typeof client.config.region });
`;

const BASELINE_TWO = `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SSMClient } from '@aws-sdk/client-ssm';
const client = new DynamoDBClient({});
const ssm = new SSMClient({});
export const handler = async () => ({ region: typeof client.config.region, ssm: typeof ssm.config.region });
`;

/** zod alone, classic and mini, each one object schema parsed once: what classic zod costs at import. */
const ZOD_CLASSIC = `import { z } from 'zod';
const s = z.object({ name: z.string().max(64), sizeMb: z.number().int() });
export const handler = async (e: unknown) => s.safeParse(e).success;
`;
const ZOD_MINI = `import * as z from 'zod/mini';
const s = z.object({ name: z.string().check(z.maxLength(64)), sizeMb: z.number().check(z.int()) });
export const handler = async (e: unknown) => s.safeParse(e).success;
`;

/** The esbuild options of infra/constructs/cc1Function.ts (NodejsFunction bundling). */
const DEPLOYED: esbuild.BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  minify: true,
  format: 'cjs',
  mainFields: ['module', 'main'],
  sourcemap: true, // SourceMapMode.DEFAULT: index.js.map, linked by a sourceMappingURL comment
  sourcesContent: false,
  treeShaking: true,
  metafile: true,
  tsconfig: join(ROOT, 'tsconfig.json'),
  logLevel: 'silent',
};

interface Bundle {
  name: string;
  file: string;
  bytes: number;
  mapBytes: number;
  clients: string[];
  /** Bytes in the output per package (node_modules/<pkg>, or `(project)`). */
  byPackage: Record<string, number>;
}

const packageOf = (input: string): string => {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m ? m[1]! : '(project)';
};

const bundle = async (name: string, entry: string | { contents: string }, outDir: string): Promise<Bundle> => {
  const outfile = join(outDir, name, 'index.js');
  const result = await esbuild.build({
    ...DEPLOYED,
    ...(typeof entry === 'string' ? { entryPoints: [entry] } : { stdin: { contents: entry.contents, resolveDir: ROOT, loader: 'ts' } }),
    outfile,
  });
  const clients = new Set<string>();
  const byPackage: Record<string, number> = {};
  for (const input of Object.keys(result.metafile!.inputs)) {
    const m = /node_modules\/@aws-sdk\/(client-[a-z0-9-]+)\//.exec(input);
    if (m) clients.add(m[1]!);
  }
  for (const [input, { bytesInOutput }] of Object.entries(result.metafile!.outputs[Object.keys(result.metafile!.outputs).find((o) => o.endsWith('index.js'))!]!.inputs)) {
    const pkg = packageOf(input);
    byPackage[pkg] = (byPackage[pkg] ?? 0) + bytesInOutput;
  }
  return { name, file: outfile, bytes: statSync(outfile).size, mapBytes: statSync(`${outfile}.map`).size, clients: [...clients].sort(), byPackage };
};

/** ms to require the bundle, measured inside a fresh `node --enable-source-maps` (process start-up excluded). */
const importMs = (file: string): number => {
  const script = `const t=process.hrtime.bigint();require(${JSON.stringify(file)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
  const out = execFileSync(process.execPath, ['--enable-source-maps', '-e', script], {
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
    // The baselines resolve @aws-sdk from the project.
    const baselineOne = await bundle('baseline-dynamodb', { contents: BASELINE_ONE }, outDir);
    const baselineTwo = await bundle('baseline-dynamodb-ssm', { contents: BASELINE_TWO }, outDir);
    const zodClassic = await bundle('zod-classic', { contents: ZOD_CLASSIC }, outDir);
    const zodMini = await bundle('zod-mini', { contents: ZOD_MINI }, outDir);
    const bundles: Bundle[] = [];
    for (const name of names) bundles.push(await bundle(name, join(ROOT, 'functions', name, 'handler.ts'), outDir));
    log(`cold start: bundled ${bundles.length} functions + 2 baselines + zod probes (source maps on)`);

    // Interleave the import runs so drift of the machine hits every bundle alike.
    const all = [baselineOne, baselineTwo, zodClassic, zodMini, ...bundles];
    const times = new Map<string, number[]>(all.map((b) => [b.name, []]));
    for (const b of all) importMs(b.file); // warm the page cache
    for (let r = 0; r < runs; r++) for (const b of r % 2 ? [...all].reverse() : all) times.get(b.name)!.push(importMs(b.file));
    const ms = (b: Bundle) => median(times.get(b.name)!);

    const perFunction: Record<string, unknown> = {};
    let pass = true;
    let worstSize = 0;
    let worstImport = 0;
    let worstName = '';
    for (const b of bundles) {
      const needed = CLIENTS_NEEDED[b.name] ?? b.clients;
      const baseline = needed.length === 1 ? baselineOne : baselineTwo;
      const sizeRatio = b.bytes / baseline.bytes;
      const importRatio = ms(b) / ms(baseline);
      const unneeded = b.clients.filter((c) => !needed.includes(c));
      const targeted = TARGETED(b.name, needed);
      const ok = !targeted || (sizeRatio <= 2.0 && importRatio <= 1.5);
      if (targeted && Math.max(sizeRatio / 2.0, importRatio / 1.5) > Math.max(worstSize / 2.0, worstImport / 1.5)) worstName = b.name;
      if (targeted) {
        worstSize = Math.max(worstSize, sizeRatio);
        worstImport = Math.max(worstImport, importRatio);
      }
      pass &&= ok;
      const top = Object.entries(b.byPackage).sort((x, y) => y[1] - x[1]).slice(0, 8);
      perFunction[b.name] = {
        clientsInBundle: b.clients,
        clientsNeeded: needed,
        ...(unneeded.length ? { clientsNotNeeded: unneeded } : {}),
        baseline: baseline.name,
        targetApplies: targeted,
        sizeKiB: round(b.bytes / 1024, 1),
        mapKiB: round(b.mapBytes / 1024, 1),
        sizeRatio: round(sizeRatio),
        importMs: round(ms(b), 1),
        importRatio: round(importRatio),
        pass: targeted ? ok : null,
        kibByPackage: Object.fromEntries(top.map(([k, v]) => [k, round(v / 1024, 1)])),
      };
    }
    const zodAlone = {
      classic: { sizeKiB: round(zodClassic.bytes / 1024, 1), importMs: round(ms(zodClassic), 1) },
      mini: { sizeKiB: round(zodMini.bytes / 1024, 1), importMs: round(ms(zodMini), 1) },
    };
    return {
      id: 6,
      name: 'cold start, bundled as deployed (source maps, --enable-source-maps): size / import time over a bundle of the same SDK clients',
      measured: Math.max(worstSize / 2.0, worstImport / 1.5),
      shown: `size ${round(worstSize)}x, import ${round(worstImport)}x (worst: ${worstName})`,
      target: 'size <= 2.0x, import <= 1.5x (one-client functions; restApi, cc1Api vs DynamoDB+SSM)',
      pass,
      details: {
        baselines: {
          [baselineOne.name]: { sizeKiB: round(baselineOne.bytes / 1024, 1), mapKiB: round(baselineOne.mapBytes / 1024, 1), importMs: round(ms(baselineOne), 1) },
          [baselineTwo.name]: { sizeKiB: round(baselineTwo.bytes / 1024, 1), mapKiB: round(baselineTwo.mapBytes / 1024, 1), importMs: round(ms(baselineTwo), 1) },
        },
        zodAlone,
        runs,
        functions: perFunction,
      },
    };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
};

if (require.main === module) {
  runColdStart().then((r) => console.log(JSON.stringify(r, null, 2)));
}
