/**
 * host/qemu-hook run directly (as libvirt runs it, with /bin/sh), without libvirt:
 * which calls it reports, the record it spools, the reasons, and that hostile
 * arguments are ignored. The real-libvirt run is test/int/host-hook.int.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseRecord } from '../../host/sender';

const HOOK = resolve(__dirname, '../../host/qemu-hook');
const HOST = 'mi-0a1b2c3d4e5f60718';

let dir: string;
let spool: string;
let stateDir: string;
let envFile: string;

const writeConfig = (lines: string[]) => writeFileSync(envFile, lines.join('\n') + '\n');
const hook = (...args: string[]) =>
  execFileSync('/bin/sh', [HOOK, ...args], {
    input: "<domain type='kvm'><name>x</name></domain>\n",
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CC1_HOST_ENV: envFile },
    timeout: 10_000,
  });
const records = () =>
  readdirSync(spool)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(spool, f), 'utf8')) as Record<string, unknown>);
const status = (domain: string, state: string, reason: string) =>
  writeFileSync(join(stateDir, `${domain}.xml`), `<!--\nWARNING\n-->\n<domstatus state='${state}' reason='${reason}' pid='4242'>\n  <monitor/>\n</domstatus>\n`);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cc1-hook-'));
  spool = join(dir, 'spool');
  stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  envFile = join(dir, 'host.env');
  // CRLF, quotes and blanks, as an operator may write it.
  writeConfig([`CC1_HOST_ID="${HOST}" \r`, `CC1_SPOOL_DIR='${spool}'\r`, `CC1_LIBVIRT_STATE_DIR=${stateDir}`]);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('started begin spools "running"; stopped end spools "stopped"; the other calls spool nothing', () => {
  for (const [op, sub] of [['prepare', 'begin'], ['start', 'begin'], ['started', 'begin'], ['stopped', 'end'], ['release', 'end']]) {
    hook('vm-12-34', op!, sub!, '-');
  }
  const [running, stopped, ...rest] = records();
  expect(rest).toEqual([]);
  expect(running).toEqual({ vmId: 12, userId: 34, domain: 'vm-12-34', hostId: HOST, state: 'running', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
  expect(stopped).toMatchObject({ vmId: 12, userId: 34, domain: 'vm-12-34', hostId: HOST, state: 'stopped' });
  expect(stopped).not.toHaveProperty('reason'); // no status file: no reason
  expect(Date.parse(stopped!.time as string)).toBeGreaterThanOrEqual(Date.parse(running!.time as string));
  // What the hook writes is what the sender (and the service) accept.
  expect(() => parseRecord(JSON.stringify(running), 'bus')).not.toThrow();
  expect(() => parseRecord(JSON.stringify(stopped), 'bus')).not.toThrow();
  // Written atomically: no temp files left; the file name starts with the time.
  expect(readdirSync(spool).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  expect(readdirSync(spool).filter((f) => f.endsWith('.json')).every((f) => /^\d{8}T\d{9}Z-\d+-[0-9a-f]+\.json$/.test(f))).toBe(true);
});

test.each([
  ['paused', 'save', 'saved'],
  ['paused', 'migration', 'migrated'],
  ['paused', 'starting up', 'start-failed'],
  ['shutdown', 'unknown', 'shutdown'],
  ['shutdown', 'from guest', 'shutdown'],
  ['running', 'booted', 'crashed'],
  ['paused', 'user', 'crashed'],
])('the stop reason from libvirt’s status file: %s/%s -> %s', (state, why, reason) => {
  status('vm-5-7', state, why);
  hook('vm-5-7', 'stopped', 'end', '-');
  expect(records()).toEqual([expect.objectContaining({ state: 'stopped', reason })]);
});

test('an incoming migration or a restore gives the next "running" its reason; release clears a stale one', () => {
  hook('vm-5-7', 'migrate', 'begin', '-');
  hook('vm-5-7', 'started', 'begin', '-');
  hook('vm-5-8', 'restore', 'begin', '-');
  hook('vm-5-8', 'started', 'begin', '-');
  hook('vm-5-9', 'migrate', 'begin', '-');
  hook('vm-5-9', 'release', 'end', '-'); // the incoming migration failed
  hook('vm-5-9', 'started', 'begin', '-');
  hook('vm-5-9', 'reconnect', 'begin', '-');
  expect(records().map((r) => [r.domain, r.state, r.reason])).toEqual([
    ['vm-5-7', 'running', 'migrated'],
    ['vm-5-8', 'running', 'restored'],
    ['vm-5-9', 'running', undefined],
    ['vm-5-9', 'running', 'reconnected'],
  ]);
  expect(readdirSync(join(spool, '.pending'))).toEqual([]);
});

test('only vm-<digits>-<digits> domains are reported; hostile names are ignored and nothing runs', () => {
  const marker = join(dir, 'pwned');
  for (const name of [
    'win10',
    'vm-1',
    'vm-1-2-3',
    'vm-01-2',
    'vm-1-',
    'vm--1',
    'vm-0-1',
    'vm-1234567890123456-1',
    `vm-1-2$(touch ${marker})`,
    `vm-1-2\nvm-3-4`,
    'vm-1-2 ',
    '../vm-1-2',
  ]) {
    hook(name, 'started', 'begin', '-');
  }
  hook('vm-1-2', 'started', 'begin', '-');
  expect(existsSync(marker)).toBe(false);
  expect(records().map((r) => r.domain)).toEqual(['vm-1-2']);
});

test('always exits 0, even without a config or a writable spool; a bad host id is spooled as "" for the sender to park', () => {
  writeConfig([`CC1_HOST_ID=mi-XYZ; touch ${join(dir, 'pwned')}`, `CC1_SPOOL_DIR=${spool}`]);
  hook('vm-1-2', 'started', 'begin', '-');
  expect(existsSync(join(dir, 'pwned'))).toBe(false);
  expect(records()).toEqual([expect.objectContaining({ hostId: '' })]);
  expect(() => parseRecord(JSON.stringify(records()[0]), 'bus')).toThrow(/hostId/);

  writeConfig(['CC1_SPOOL_DIR=/proc/not-writable']);
  expect(() => hook('vm-1-2', 'started', 'begin', '-')).not.toThrow();
  rmSync(envFile);
  expect(() => hook('vm-1-2', 'stopped', 'end', '-')).not.toThrow();
});

test('concurrent hooks never collide', async () => {
  const { spawn } = await import('node:child_process');
  const runs = Array.from({ length: 20 }, (_, i) =>
    new Promise<number>((done) => {
      const child = spawn('/bin/sh', [HOOK, `vm-${i + 1}-7`, 'started', 'begin', '-'], { env: { PATH: process.env.PATH ?? '', CC1_HOST_ENV: envFile } });
      child.stdin.end('<domain/>');
      child.on('exit', (code) => done(code ?? -1));
    }),
  );
  expect(await Promise.all(runs)).toEqual(Array(20).fill(0));
  expect(records()).toHaveLength(20);
});
