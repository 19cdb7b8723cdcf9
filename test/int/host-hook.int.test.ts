/**
 * The host side of VM events (SPEC 4.3) against a REAL libvirtd + QEMU:
 * host/qemu-hook installed as /etc/libvirt/hooks/qemu spools a record when a transient
 * `vm-<n>-<m>` domain starts and when it is destroyed (saved, killed); the bundled
 * sender (esbuild, run with node as on a host) puts them to the local stack's
 * `/_local/events`, and the service's VM directory shows the VM running, then stopped.
 *
 * libvirt 9.0 looks for hook scripts at start-up and on SIGHUP only: the test installs
 * the hook (a copy pointing at a temporary config), sends libvirtd SIGHUP, and in the
 * end puts back whatever hook was there before and sends SIGHUP again.
 *
 * Required in CI (run `bash scripts/setup-libvirt.sh` first, as root); skipped loudly
 * elsewhere when libvirt is missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { buildSync } from 'esbuild';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { createTransientDomain, destroyDomain, domainXml, LIBVIRT_URI, libvirtSuiteMode, uniqueDomainName, virsh } from '../support/libvirtTestDomains';

const HOOKS_DIR = '/etc/libvirt/hooks';
const HOOK_PATH = join(HOOKS_DIR, 'qemu');
const HOST_ID = 'mi-0c0ffee0c0ffee001';
const ROOT = resolve(__dirname, '../..');

const mode = libvirtSuiteMode();
if (mode.missingInCi) {
  test('libvirt is available (required in CI)', () => {
    throw new Error(`CI is set but "virsh -c ${LIBVIRT_URI} version" does not answer: run "bash scripts/setup-libvirt.sh" first`);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);
/** virsh without blocking the event loop, so that two domains can change state at once. */
const virshAsync = async (...args: string[]) => (await run('virsh', ['-c', LIBVIRT_URI, ...args], { timeout: 30_000 })).stdout;

/** How long each step took: printed at the end (libvirtd is shared and sometimes slow). */
const timings: string[] = [];
const timed = async <T>(label: string, step: () => Promise<T> | T): Promise<T> => {
  const start = Date.now();
  try {
    return await step();
  } finally {
    timings.push(`${label}: ${Date.now() - start} ms`);
  }
};

/** libvirtd's pid: its pid file (libvirtd -d / systemd), else the one process named libvirtd. */
const libvirtdPid = (): number => {
  for (const file of ['/run/libvirtd.pid', '/var/run/libvirtd.pid']) {
    try {
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid > 0 && existsSync(`/proc/${pid}`)) return pid;
    } catch {
      // try the next
    }
  }
  const pids = execFileSync('pgrep', ['-x', 'libvirtd'], { encoding: 'utf8' }).trim().split('\n').map(Number);
  if (pids.length !== 1 || !(pids[0]! > 0)) throw new Error(`cannot tell which process is libvirtd: ${pids.join(',')}`);
  return pids[0]!;
};

/** Makes libvirtd look for hook scripts again (libvirt 9.0: at start-up and on SIGHUP). */
const reloadHooks = async (): Promise<void> => {
  process.kill(libvirtdPid(), 'SIGHUP');
  for (let i = 0; i < 40; i++) {
    await sleep(250);
    try {
      virsh('list', '--name');
      return;
    } catch {
      // reloading
    }
  }
  throw new Error('libvirtd did not answer after SIGHUP');
};

interface SpooledRecord {
  file: string;
  vmId: number;
  userId: number;
  domain: string;
  hostId: string;
  state: string;
  reason?: string;
  time: string;
}

(mode.run ? describe : describe.skip)('host side of VM events with a real libvirtd', () => {
  let dir: string;
  let spool: string;
  let envFile: string;
  let senderJs: string;
  let backup: string | undefined;
  let installed = false;
  let stack: LocalStack;
  const domains: string[] = [];

  const spooled = (domain: string): SpooledRecord[] =>
    (existsSync(spool) ? readdirSync(spool) : [])
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((file) => ({ file, ...(JSON.parse(readFileSync(join(spool, file), 'utf8')) as Omit<SpooledRecord, 'file'>) }))
      .filter((r) => r.domain === domain);

  const waitForRecord = async (domain: string, state: string, timeoutMs = 15_000): Promise<SpooledRecord> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = spooled(domain).find((r) => r.state === state);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no "${state}" record for ${domain} in ${spool} after ${timeoutMs} ms: ${readdirSync(spool).join(', ')}`);
      await sleep(100);
    }
  };

  /**
   * Other suites may start vm-<n>-<m> domains on this shared libvirtd while the hook is
   * installed: their records are dropped here, so that only this suite's are sent.
   */
  const dropForeignRecords = () => {
    for (const f of readdirSync(spool).filter((n) => n.endsWith('.json'))) {
      const r = JSON.parse(readFileSync(join(spool, f), 'utf8')) as { domain?: string };
      if (!domains.includes(r.domain ?? '')) unlinkSync(join(spool, f));
    }
  };

  const runSender = async (): Promise<string> => {
    dropForeignRecords();
    const { stderr } = await run(
      process.execPath,
      [senderJs, '--once', '--config', envFile, '--spool', spool, '--local', stack.url, '--max-attempts', '3'],
      { timeout: 30_000 },
    );
    return stderr;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cc1-host-int-'));
    spool = join(dir, 'spool');
    envFile = join(dir, 'host.env');
    writeFileSync(envFile, `# written by ${__filename}\nCC1_HOST_ID=${HOST_ID}\nCC1_SPOOL_DIR=${spool}\n`);

    // The sender as it ships to a host: one esbuild bundle, run with plain node.
    senderJs = join(dir, 'cc1-sender.js');
    await timed('esbuild bundle', () => buildSync({ entryPoints: [join(ROOT, 'host/sender.ts')], bundle: true, platform: 'node', target: 'node20', outfile: senderJs, logLevel: 'error' }));

    // Install the hook: the shipped script, with its config path pointing at the test's.
    const script = readFileSync(join(ROOT, 'host/qemu-hook'), 'utf8');
    const line = 'CC1_HOST_ENV=${CC1_HOST_ENV:-/etc/cc1/host.env}';
    expect(script).toContain(line);
    mkdirSync(HOOKS_DIR, { recursive: true });
    if (existsSync(HOOK_PATH)) {
      backup = join(HOOKS_DIR, `.qemu.cc1-test-backup-${process.pid}`);
      renameSync(HOOK_PATH, backup);
    }
    const staged = join(HOOKS_DIR, `.qemu.cc1-test-${process.pid}`);
    writeFileSync(staged, script.replace(line, `CC1_HOST_ENV=${envFile}`));
    chmodSync(staged, 0o755);
    renameSync(staged, HOOK_PATH);
    installed = true;
    await timed('SIGHUP libvirtd', reloadHooks);

    stack = await timed('local stack start', () => startLocalStack({ hypervisor: 'simulated', feedIntervalMs: 50 }));
  }, 60_000);

  afterAll(async () => {
    for (const d of domains) destroyDomain(d);
    if (installed) {
      rmSync(HOOK_PATH, { force: true });
      if (backup) renameSync(backup, HOOK_PATH);
      await reloadHooks();
    }
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
    console.info(`host-hook int test timings:\n  ${timings.join('\n  ')}`);
  }, 60_000);

  test('start and destroy: the hook spools running then stopped, the sender delivers, the VM directory follows', async () => {
    const domain = uniqueDomainName();
    domains.push(domain);
    const [, vmId, userId] = domain.split('-').map(Number) as [number, number, number];

    const beforeStart = Date.now();
    await timed('virsh create', () => createTransientDomain(domain));
    const running = await timed('hook record (running)', () => waitForRecord(domain, 'running'));
    expect(running).toEqual({
      file: expect.stringMatching(/^\d{8}T\d{9}Z-\d+-[0-9a-f]+\.json$/),
      vmId,
      userId,
      domain,
      hostId: HOST_ID,
      state: 'running',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(Date.parse(running.time)).toBeGreaterThanOrEqual(beforeStart - 1000);
    expect(Date.parse(running.time)).toBeLessThanOrEqual(Date.now());

    await timed('sender --once (running)', runSender);
    expect(spooled(domain)).toEqual([]); // accepted, so removed
    await expect(stack.container.deps.vms.get(vmId)).resolves.toMatchObject({ vmId, userId, domain, hostId: HOST_ID, state: 'running', stateTime: running.time });

    await timed('virsh destroy', () => destroyDomain(domain));
    const stopped = await timed('hook record (stopped)', () => waitForRecord(domain, 'stopped'));
    // libvirt 9.0: virsh destroy asks QEMU to quit, which QEMU reports as a shutdown.
    expect(stopped).toMatchObject({ vmId, userId, domain, hostId: HOST_ID, state: 'stopped', reason: 'shutdown' });
    expect(Date.parse(stopped.time)).toBeGreaterThan(Date.parse(running.time));
    await sleep(500); // "release end" follows "stopped end": it must not add a record
    expect(spooled(domain).map((r) => r.state)).toEqual(['stopped']);

    await timed('sender --once (stopped)', runSender);
    expect(spooled(domain)).toEqual([]);
    await expect(stack.container.deps.vms.get(vmId)).resolves.toMatchObject({ vmId, state: 'stopped', stateTime: stopped.time, hostId: HOST_ID });
    expect(stack.deadLetters).toEqual([]);
    expect(existsSync(join(spool, 'failed'))).toBe(false);
  }, 60_000);

  test('virsh save reports "saved" (disks stay attached); a QEMU that dies reports "crashed"', async () => {
    const saved = uniqueDomainName();
    let killed = uniqueDomainName();
    while (killed.split('-')[1] === saved.split('-')[1]) killed = uniqueDomainName();
    domains.push(saved, killed);
    const saveFile = join(dir, `${saved}.save`);
    const xmlFile = (name: string) => {
      const file = join(dir, `${name}.xml`);
      writeFileSync(file, domainXml(name));
      return file;
    };

    // Both domains at once: libvirtd is shared, and each virsh call can take seconds.
    await timed('virsh create x2', () => Promise.all([virshAsync('create', xmlFile(saved)), virshAsync('create', xmlFile(killed))]));
    await Promise.all([waitForRecord(saved, 'running'), waitForRecord(killed, 'running')]);
    const pid = Number(readFileSync(`/run/libvirt/qemu/${killed}.pid`, 'utf8').trim());
    await timed('virsh save + kill -9 qemu', () => Promise.all([virshAsync('save', saved, saveFile), Promise.resolve(process.kill(pid, 'SIGKILL'))]));
    expect(await waitForRecord(saved, 'stopped')).toMatchObject({ state: 'stopped', reason: 'saved' });
    expect(await waitForRecord(killed, 'stopped')).toMatchObject({ state: 'stopped', reason: 'crashed' });
    rmSync(saveFile, { force: true });

    await timed('sender --once (save, crash)', runSender);
    for (const domain of [saved, killed]) {
      const [, vmId] = domain.split('-').map(Number) as [number, number];
      await expect(stack.container.deps.vms.get(vmId)).resolves.toMatchObject({ state: 'stopped', hostId: HOST_ID });
    }
    expect(stack.deadLetters).toEqual([]);
  }, 60_000);
});
