/**
 * The same attach/detach/resize suite against the simulated virsh (always runs, no
 * libvirt needed), plus the timeout paths, which are easiest to provoke with a slow
 * domain. The suite's wording cases are the real virsh's: the simulator answers as it.
 */
import { ListCommandInvocationsCommand } from '@aws-sdk/client-ssm';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostCommandError } from '../../application/ports';
import { SsmHypervisor } from '../../adapters/ssm/ssmHypervisor';
import { startLocalRunCommand } from '../../local/runCommand/server';
import { SIMULATED_STATE_ENV, SIMULATED_VIRSH, setDomainDelay, setDomainRunning, setDomainShutOff } from '../../local/simulatedVirsh/simulatedHosts';
import { HOST_ID, describeHypervisorSuite, failureKind, newClient } from '../support/libvirtHypervisorSuite';

const stateDir = mkdtempSync(join(tmpdir(), 'cc1-sim-'));
const stateFile = join(stateDir, 'virsh-state.json');
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

const simulatedDomblklist = async (name: string) =>
  execFileSync(process.execPath, [SIMULATED_VIRSH, 'domblklist', name, '--details'], {
    env: { ...process.env, [SIMULATED_STATE_ENV]: stateFile },
    encoding: 'utf8',
  })
    .split('\n')
    .slice(2)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 4)
    .map((cols) => ({ target: cols[2]!, source: cols.slice(3).join(' ') }));

describeHypervisorSuite({
  name: 'simulated virsh',
  instance: () => ({ virsh: 'simulated', simulatedStateFile: stateFile }),
  startDomain: (name) => setDomainRunning(stateFile, name, true),
  stopDomain: (name) => setDomainRunning(stateFile, name, false),
  targets: simulatedDomblklist,
  virsh: (args) => {
    const r = spawnSync(process.execPath, [SIMULATED_VIRSH, ...args], { env: { ...process.env, [SIMULATED_STATE_ENV]: stateFile }, encoding: 'utf8' });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  },
  startPersistentDomain: (name) => setDomainRunning(stateFile, name, true),
  shutOff: (name) => setDomainShutOff(stateFile, name),
  removeDomain: (name) => setDomainRunning(stateFile, name, false),
});

describe('timeouts (simulated virsh with a wedged domain)', () => {
  jest.setTimeout(20_000);
  const slow = 'vm-424242-7';
  beforeAll(async () => {
    await setDomainRunning(stateFile, slow, true);
    await setDomainDelay(stateFile, slow, 4_000);
  });
  afterAll(() => setDomainRunning(stateFile, slow, false));

  it('cancels the command and reports timeout when the host does not answer within the bound', async () => {
    const endpoint = await startLocalRunCommand({ instances: { [HOST_ID]: { virsh: 'simulated', simulatedStateFile: stateFile } } });
    const client = newClient(endpoint.url);
    try {
      const hypervisor = new SsmHypervisor({ client, timeoutMs: 1_000, pollIntervalMs: 100 });
      // The bound held: the host sleeps 4 s, the caller gave up at 1 s and said so (speed is `npm run bench`'s).
      const error = await hypervisor.listDisks({ hostId: HOST_ID, domain: slow }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(HostCommandError);
      expect((error as HostCommandError).kind).toBe('timeout');
      expect((error as HostCommandError).message).toMatch(/no result from .* within 1 s/);
      const { CommandInvocations } = await client.send(new ListCommandInvocationsCommand({ InstanceId: HOST_ID }));
      expect(CommandInvocations?.map((i) => i.Status)).toEqual(['Cancelled']);
    } finally {
      await endpoint.close();
      client.destroy();
    }
  });

  it('maps the execution timeout of the step (status TimedOut) to timeout', async () => {
    const endpoint = await startLocalRunCommand({
      instances: { [HOST_ID]: { virsh: 'simulated', simulatedStateFile: stateFile } },
      stepTimeoutSeconds: 1,
    });
    const client = newClient(endpoint.url);
    try {
      const hypervisor = new SsmHypervisor({ client, timeoutMs: 10_000, pollIntervalMs: 100 });
      await expect(failureKind(hypervisor.detachDisk({ hostId: HOST_ID, domain: slow, dev: 'vdb' }))).resolves.toBe('timeout');
      const { CommandInvocations } = await client.send(new ListCommandInvocationsCommand({ InstanceId: HOST_ID }));
      expect(CommandInvocations?.map((i) => i.Status)).toEqual(['TimedOut']);
    } finally {
      await endpoint.close();
      client.destroy();
    }
  });
});
