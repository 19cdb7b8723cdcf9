/**
 * `npm run ops -- reconcile [--settle-seconds N]` against a running local stack (as
 * `npm start` runs it, with a data dir): the CLI finds the stack through
 * `<data dir>/local-stack.json`, asks the hosts through its Run Command endpoint, and
 * prints the reconciler's report as JSON. Simulated virsh: this is about the wiring.
 */
import '../support/faultsEnv';
import '../../local/localDefaults';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamIdOf } from '../../domain/storageImage';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { runCli } from '../../ops/cli';
import { LOCAL_STACK_FILE } from '../../ops/commands';
import { readyImages, requestAttach, sendVmEvent } from '../support/faultsStack';

jest.setTimeout(60_000);

const USER = 6100;
const HOST = 'mi-0123456789abcdef3';
let dataDir: string;
let stack: LocalStack;
const savedDataDir = process.env.CC1_DATA_DIR;

const cli = async (argv: string[]) => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { io: { out: (l) => out.push(l), err: (l) => err.push(l) } });
  return { code, out, err };
};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cc1-ops-reconcile-'));
  process.env.CC1_DATA_DIR = dataDir;
  stack = await startLocalStack({ dataDir, hypervisor: 'simulated', feedIntervalMs: 60_000, config: { hostCommandPollMs: 25 } });
});
afterAll(async () => {
  await stack?.close();
  if (savedDataDir === undefined) delete process.env.CC1_DATA_DIR;
  else process.env.CC1_DATA_DIR = savedDataDir;
  rmSync(dataDir, { recursive: true, force: true });
});

// That the CLI reads the file the stack writes (local/stack.ts and ops/commands.ts each name
// it) is behaviour the reconcile tests below prove: under another name the CLI would find
// no file and exit 1 with "no running local server" (the last test).
test('the running stack writes local-stack.json with its endpoints', () => {
  const info = JSON.parse(readFileSync(join(dataDir, LOCAL_STACK_FILE), 'utf8')) as Record<string, string>;
  expect(info).toEqual({
    url: stack.url,
    dynamodbEndpoint: stack.dynamo.endpoint,
    ssmEndpoint: stack.runCommand.url,
    prefix: stack.dynamo.prefix,
    storagePath: stack.storagePath,
    storageHostId: 'mi-0000000000000000a',
    storages: [{ id: 'default', path: stack.storagePath, hostId: 'mi-0000000000000000a' }],
  });
});

test('reconcile: in-flight work is left alone under the settle time, repaired with --settle-seconds 0; the report is JSON on stdout', async () => {
  const deps = stack.container.deps;
  const vmId = 61001;
  await sendVmEvent(stack, { vmId, userId: USER, domain: `vm-${vmId}-${USER}`, hostId: HOST, state: 'running' });
  const [img] = await readyImages(stack, USER, 1);
  // A crash before virsh: the intent step (claim + AttachRequested) committed, nothing on the host.
  await requestAttach(deps, img!, vmId, 'vdb', USER);

  const young = await cli(['reconcile']); // default settle: 2 minutes
  expect(young.code).toBe(0);
  expect(young.out).toHaveLength(1);
  expect(JSON.parse(young.out[0]!)).toEqual({ vmsChecked: 1, hostsUnreachable: [], hostsSkipped: [], repairs: [] });
  expect(young.err.join('\n')).toContain(stack.runCommand.url);

  const settled = await cli(['reconcile', '--settle-seconds', '0']);
  expect(settled.code).toBe(0);
  expect(JSON.parse(settled.out[0]!)).toEqual({
    vmsChecked: 1,
    hostsUnreachable: [],
    hostsSkipped: [],
    repairs: [{ kind: 'attach-failed', vmId, diskDev: 'vdb', imageId: img }],
  });
  expect((await deps.vms.get(vmId))!.devices).toEqual({});
  expect((await deps.events.readStream(streamIdOf(img!))).events.at(-1)).toMatchObject({
    type: 'StorageImageAttachFailed',
    cause: { kind: 'system', reason: 'reconciled' },
  });
  // Again: nothing left to do.
  expect(JSON.parse((await cli(['reconcile', '--settle-seconds', '0'])).out[0]!).repairs).toEqual([]);
});

test('reconcile: bad arguments exit 2 with the usage', async () => {
  for (const argv of [['reconcile', '--settle-seconds'], ['reconcile', '--settle-seconds', '-1'], ['reconcile', '--fast']]) {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.err.join('\n')).toContain('usage: reconcile [--settle-seconds N]');
  }
});

test('reconcile without a running local server says so (exit 1); the file is removed when the stack stops', async () => {
  const other = mkdtempSync(join(tmpdir(), 'cc1-ops-reconcile-none-'));
  process.env.CC1_DATA_DIR = other;
  try {
    const r = await cli(['reconcile']);
    expect(r.code).toBe(1);
    expect(r.err.join('\n')).toContain('no running local server');
  } finally {
    process.env.CC1_DATA_DIR = dataDir;
    rmSync(other, { recursive: true, force: true });
  }
  const s2dir = mkdtempSync(join(tmpdir(), 'cc1-ops-reconcile-2-'));
  const s2 = await startLocalStack({ dataDir: s2dir, hypervisor: 'simulated', feedIntervalMs: 60_000 });
  expect(existsSync(join(s2dir, LOCAL_STACK_FILE))).toBe(true);
  await s2.close();
  expect(existsSync(join(s2dir, LOCAL_STACK_FILE))).toBe(false);
  rmSync(s2dir, { recursive: true, force: true });
}, 180_000); // a stack on a data dir starts its own DynamoDB Local JVM: slow on a busy machine
