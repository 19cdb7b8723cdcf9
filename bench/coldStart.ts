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
 *
 * What the Powertools Tracer costs (issue 14 puts it on every function, with its
 * aws-xray-sdk-core) is measured, not estimated: each function is also bundled with the
 * Tracer swapped for a no-op at bundle time (the deployed bundle keeps it), and each
 * baseline also with the Tracer capturing its clients. These are shown beside the
 * figure; the figure and its PASS/FAIL stay those of the target as written.
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

/** The baselines' clients captured by the Tracer, as functions/shared/container.ts and hostsOverSsm.ts capture theirs. */
const TRACED = (baseline: string) =>
  `import { Tracer } from '@aws-lambda-powertools/tracer';\nconst tracer = new Tracer();\n${baseline.replace(/const (\w+) = new (\w+)\(\{\}\);/g, 'const $1 = tracer.captureAWSv3Client(new $2({}));')}`;

/** For measuring only: the Tracer and its middleware as no-ops, so a bundle holds no aws-xray-sdk-core. */
const withoutTracer: esbuild.Plugin = {
  name: 'without-tracer',
  setup(build) {
    build.onResolve({ filter: /^@aws-lambda-powertools\/tracer(\/middleware)?$/ }, (args) => ({ path: args.path, namespace: 'no-tracer' }));
    build.onLoad({ filter: /.*/, namespace: 'no-tracer' }, () => ({
      loader: 'js',
      contents: 'export class Tracer { captureAWSv3Client(client) { return client; } }\nexport const captureLambdaHandler = () => ({ before() {} });\n',
    }));
  },
};

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

const bundle = async (name: string, entry: string | { contents: string }, outDir: string, plugins: esbuild.Plugin[] = []): Promise<Bundle> => {
  const outfile = join(outDir, name, 'index.js');
  const result = await esbuild.build({
    ...DEPLOYED,
    plugins,
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
    const tracedOne = await bundle('baseline-dynamodb+tracer', { contents: TRACED(BASELINE_ONE) }, outDir);
    const tracedTwo = await bundle('baseline-dynamodb-ssm+tracer', { contents: TRACED(BASELINE_TWO) }, outDir);
    const bundles: Bundle[] = [];
    const untraced = new Map<string, Bundle>();
    for (const name of names) {
      const entry = join(ROOT, 'functions', name, 'handler.ts');
      bundles.push(await bundle(name, entry, outDir));
      untraced.set(name, await bundle(`${name}-without-tracer`, entry, outDir, [withoutTracer]));
    }
    log(`cold start: bundled ${bundles.length} functions (and each without the Tracer) + 4 baselines + zod probes (source maps on)`);

    // Interleave the import runs so drift of the machine hits every bundle alike.
    const all = [baselineOne, baselineTwo, tracedOne, tracedTwo, zodClassic, zodMini, ...bundles, ...untraced.values()];
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
      const traced = needed.length === 1 ? tracedOne : tracedTwo;
      const sizeRatio = b.bytes / baseline.bytes;
      const importRatio = ms(b) / ms(baseline);
      const noTracer = untraced.get(b.name)!;
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
        // Beside the figure: the same function with the Tracer as a no-op, over the same baseline;
        // and the deployed function over a baseline whose clients the Tracer captures too.
        withoutTracer: { sizeRatio: round(noTracer.bytes / baseline.bytes), importMs: round(ms(noTracer), 1), importRatio: round(ms(noTracer) / ms(baseline)) },
        overTracedBaseline: { baseline: traced.name, sizeRatio: round(b.bytes / traced.bytes), importRatio: round(ms(b) / ms(traced)) },
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
          [tracedOne.name]: { sizeKiB: round(tracedOne.bytes / 1024, 1), mapKiB: round(tracedOne.mapBytes / 1024, 1), importMs: round(ms(tracedOne), 1) },
          [tracedTwo.name]: { sizeKiB: round(tracedTwo.bytes / 1024, 1), mapKiB: round(tracedTwo.mapBytes / 1024, 1), importMs: round(ms(tracedTwo), 1) },
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
