/**
 * `npm start` as a supervisor (systemd, a container runtime, a terminal) runs it, started
 * exactly as the README says (SPEC 4.5, issue 19):
 * - SIGTERM to npm's process: requests in flight finish and answer, then everything stops,
 *   no process is left and the port is free (npm's `sh -c` used to die alone, leaving tsx,
 *   node and java serving the port);
 * - npm killed outright (kill -9): the service sees its parent gone and stops, the JVM too;
 * - the database killed (kill -9 of the JVM): the service restarts it on the same data and
 *   port and serves again, with 503 + Retry-After meanwhile, never 500.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signLocalToken } from '../../local/jwt';
import { setDomainDelay } from '../../local/simulatedVirsh/simulatedHosts';
import { REPO_ROOT, waitFor } from '../support/e2eStack';

jest.setTimeout(120_000);

interface Started {
  npm: ChildProcess;
  url: string;
  dataDir: string;
  output: () => string;
}

const dirs: string[] = [];
const started: Started[] = [];
afterAll(() => {
  for (const s of started) for (const pid of [s.npm.pid!, ...descendants(s.npm.pid!)]) kill(pid, 'SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const kill = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Every process below `pid`, read from ps (pid, ppid). */
const descendants = (pid: number): number[] => {
  const rows = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of rows) if (ppid === parent) (found.push(child), walk(child));
  };
  walk(pid);
  return found;
};
const javaOf = (pids: number[]) =>
  pids.find((pid) => /java/.test(spawnSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' }).stdout));

const npmStart = async (): Promise<Started> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cc1-lifecycle-'));
  dirs.push(dataDir);
  let output = '';
  const npm = spawn('npm', ['start'], { cwd: REPO_ROOT, env: { ...process.env, PORT: '0', CC1_DATA_DIR: dataDir, CC1_HYPERVISOR: 'simulated', CC1_DRAIN_SECONDS: '20' } });
  npm.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  npm.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const url = await waitFor(
    async () => /listening on (http:\/\/\S+)/.exec(output)?.[1],
    (u) => u !== undefined,
    60_000,
    100,
  );
  const s = { npm, url: url!, dataDir, output: () => output };
  started.push(s);
  return s;
};

const portClosed = async (url: string) => {
  try {
    await fetch(url + '/disk-controllers');
    return false;
  } catch {
    return true;
  }
};

const api = async (url: string, token: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: text ? JSON.parse(text) : undefined };
};

test('SIGTERM to npm: an attach in flight finishes and answers, then no process of the service is left and the port is free', async () => {
  const s = await npmStart();
  const tree = descendants(s.npm.pid!);
  expect(javaOf(tree)).toBeDefined();
  const token = await signLocalToken({ userId: 8101 });
  const created = await api(s.url, token, 'POST', '/storage-images', { name: 'in flight', diskController: 'virtio', sizeMb: 1 });
  await waitFor(() => api(s.url, token, 'GET', `/storage-images/${created.json.id}`), (r) => r.json.state === 'ok');
  const detail = JSON.stringify({ vmId: 8111, userId: 8101, domain: 'vm-8111-8101', hostId: 'i-0123456789abcdef0', state: 'running', time: new Date().toISOString() });
  await fetch(s.url + '/_local/events', { method: 'POST', body: JSON.stringify({ Entries: [{ Source: 'cc1.hypervisor', DetailType: 'VM State Change', Detail: detail }] }) });
  await waitFor(() => api(s.url, token, 'GET', '/storage-images'), () => true);
  // The host takes 3 s to answer: the attach is in flight when the signal comes.
  await setDomainDelay(join(s.dataDir, 'simulated-virsh.json'), 'vm-8111-8101', 3_000);
  const attach = api(s.url, token, 'POST', `/storage-images/${created.json.id}/attach`, { vmId: 8111 });
  await waitFor(
    () => api(s.url, token, 'GET', `/storage-images/${created.json.id}/history`),
    (r) => r.json.items.some((e: { type: string }) => e.type === 'StorageImageAttachRequested'),
  );
  s.npm.kill('SIGTERM');
  const answered = await attach;
  expect({ status: answered.status, vmId: answered.json.vmId, diskDev: answered.json.diskDev }).toEqual({ status: 200, vmId: 8111, diskDev: 'vdb' });
  await waitFor(async () => tree.filter(alive), (left) => left.length === 0, 30_000, 100);
  expect(await portClosed(s.url)).toBe(true);
  expect(s.output()).toMatch(/SIGTERM: draining/);
});

test('npm killed outright (kill -9): the service notices its parent is gone and stops, the database with it', async () => {
  const s = await npmStart();
  const tree = descendants(s.npm.pid!);
  expect(javaOf(tree)).toBeDefined();
  s.npm.kill('SIGKILL');
  await waitFor(async () => tree.filter(alive), (left) => left.length === 0, 30_000, 100);
  expect(await portClosed(s.url)).toBe(true);
});

test('the database killed (kill -9 of the JVM): 503 with Retry-After meanwhile, never 500; it comes back on the same data and serves', async () => {
  const s = await npmStart();
  const token = await signLocalToken({ userId: 8102 });
  const before = await api(s.url, token, 'POST', '/storage-images', { name: 'kept', diskController: 'virtio', sizeMb: 1 });
  expect(before.status).toBe(201);
  const java = javaOf(descendants(s.npm.pid!))!;
  process.kill(java, 'SIGKILL');
  const statuses = new Set<number>();
  const back = await waitFor(
    async () => {
      const reply = await api(s.url, token, 'GET', `/storage-images/${before.json.id}`);
      statuses.add(reply.status);
      if (reply.status === 503) expect(Number(reply.retryAfter)).toBeGreaterThan(0);
      return reply;
    },
    (reply) => reply.status === 200,
    60_000,
    100,
  );
  expect(back.json.name).toBe('kept');
  expect([...statuses].filter((code) => code !== 200 && code !== 503)).toEqual([]);
  expect(javaOf(descendants(s.npm.pid!))).not.toBe(java);
  await waitFor(async () => s.output(), (o) => /\[dynamodb\] restarted/.test(o), 10_000, 100);
  const after = await api(s.url, token, 'POST', '/storage-images', { name: 'after', diskController: 'virtio', sizeMb: 1 });
  expect(after.status).toBe(201);
  s.npm.kill('SIGTERM');
});
