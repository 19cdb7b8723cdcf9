/**
 * Synthesizes the real stack WITH bundling: the project's own esbuild (no Docker)
 * bundles every functions/<name>/handler.ts. Each asset must exist, be minified, carry
 * a source map, load on its own (the AWS SDK and every dependency inside: no
 * externals) and export `handler`; none may contain the local-only HS256 path.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { PROJECT_ROOT } from '../../infra/constructs/cc1Function';
import { StorageImagesStack } from '../../infra/storageImagesStack';

jest.setTimeout(300_000);

const FUNCTIONS = ['restApi', 'cc1Api', 'vmEvents', 'projector', 'diskFiles', 'reconciler'];

describe('bundling the functions', () => {
  let outdir: string;
  let assets: Map<string, string>; // function name -> asset directory

  beforeAll(() => {
    outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc1-bundles-'));
    // With cdk.json's feature flags, as `cdk synth` bundles.
    const { context } = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
    const app = new App({ outdir, context });
    const stack = new StorageImagesStack(app, 'Cc1StorageImages');
    app.synth();
    // Logical ids start with the construct id (RestApi/Function -> RestApiFunction…); S3Key is <asset hash>.zip.
    const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function') as Record<string, { Properties: { Code: { S3Key: string } } }>;
    assets = new Map(
      FUNCTIONS.map((name) => {
        const prefix = `${name.charAt(0).toUpperCase()}${name.slice(1)}Function`;
        const ids = Object.keys(functions).filter((id) => id.startsWith(prefix));
        if (ids.length !== 1) throw new Error(`expected one function ${prefix}*, found ${ids.join(', ') || 'none'}`);
        const hash = functions[ids[0]!]!.Properties.Code.S3Key.replace(/\.zip$/, '');
        return [name, path.join(outdir, `asset.${hash}`)];
      }),
    );
  });

  afterAll(() => {
    if (outdir) fs.rmSync(outdir, { recursive: true, force: true });
  });

  it('makes one asset per function', () => {
    expect(new Set(assets.values()).size).toBe(FUNCTIONS.length);
    for (const dir of assets.values()) expect(fs.readdirSync(dir).sort()).toEqual(['index.js', 'index.js.map']);
  });

  it.each(FUNCTIONS)('%s: index.js exists, is minified and has a source map', (name) => {
    const dir = assets.get(name)!;
    const code = fs.readFileSync(path.join(dir, 'index.js'), 'utf8');
    const lines = code.split('\n');
    // Minified: nearly all of the code sits in very long lines (the short lines left are
    // multi-line string literals, such as the SSM documents' shell scripts).
    expect(code.length / lines.length).toBeGreaterThan(1_000);
    const inLongLines = lines.filter((l) => l.length > 2_000).reduce((n, l) => n + l.length, 0);
    expect(inLongLines / code.length).toBeGreaterThan(0.95);
    expect(code).toMatch(/\/\/# sourceMappingURL=index\.js\.map\s*$/);
    const map = JSON.parse(fs.readFileSync(path.join(dir, 'index.js.map'), 'utf8')) as { sources: string[] };
    expect(map.sources.some((s) => s.includes(`functions/${name}/handler.ts`))).toBe(true);
    // Nothing of the local stack, and no local HS256 token check, reaches a bundle.
    expect(code).not.toContain('LOCAL_JWT_SECRET');
    expect(code).not.toContain('HS256');
    expect(map.sources.filter((s) => /(^|\/)local\//.test(s) && !s.includes('node_modules'))).toEqual([]);
  });

  it.each(FUNCTIONS)('%s: loads on its own (SDK v3 bundled, no externals) and exports handler', (name) => {
    const file = path.join(assets.get(name)!, 'index.js');
    // A fresh Node outside the project: only what is in the bundle can be required.
    const out = execFileSync(process.execPath, ['-e', `process.stdout.write(typeof require(${JSON.stringify(file)}).handler)`], {
      cwd: os.tmpdir(),
      env: { PATH: process.env.PATH ?? '', AWS_REGION: 'eu-west-1', NODE_PATH: '' },
      encoding: 'utf8',
    });
    expect(out).toBe('function');
    // The SDK is inside (its user agent marker), not taken from the runtime; the only
    // require of an @aws-sdk package left is the SDK's own optional, guarded CRT probe.
    const code = fs.readFileSync(file, 'utf8');
    expect(code).toContain('aws-sdk-js');
    const required = [...code.matchAll(/require\("(@aws-sdk\/[^"]+)"\)/g)].map((m) => m[1]);
    expect([...new Set(required)].filter((m) => m !== '@aws-sdk/signature-v4-crt')).toEqual([]);
  });

  it('bundles from this repository, not from a copy', () => {
    expect(fs.existsSync(path.join(PROJECT_ROOT, 'functions', 'restApi', 'handler.ts'))).toBe(true);
  });
});
