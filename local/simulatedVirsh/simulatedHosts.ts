/**
 * Start/stop domains of the simulated hypervisor (local/simulatedVirsh/virsh).
 * The local stack calls setDomainRunning when "VM running/stopped" events arrive, so
 * the simulated `virsh` knows which domains exist. The state file format and its lock
 * live in one place, the simulated virsh itself; this module just asks it.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The folder to put first on PATH so that `virsh` is the simulated one. */
export const SIMULATED_VIRSH_DIR = __dirname;
export const SIMULATED_VIRSH = join(__dirname, 'virsh');
/** Environment variable naming the state file of the simulated virsh. */
export const SIMULATED_STATE_ENV = 'CC1_SIM_VIRSH_STATE';

const sim = async (stateFile: string, args: string[]): Promise<void> => {
  await run(process.execPath, [SIMULATED_VIRSH, ...args], {
    env: { ...process.env, [SIMULATED_STATE_ENV]: stateFile },
    timeout: 15_000,
  });
};

/** Marks a domain running (created with no disks) or stopped (removed with its disks). */
export const setDomainRunning = (stateFile: string, domain: string, running: boolean): Promise<void> =>
  sim(stateFile, ['cc1-sim-set-running', domain, running ? 'yes' : 'no']);

/** Test aid: every virsh call about this domain first sleeps `ms` (a wedged host). */
export const setDomainDelay = (stateFile: string, domain: string, ms: number): Promise<void> =>
  sim(stateFile, ['cc1-sim-set-delay', domain, String(ms)]);

/**
 * Test aid: the domain stops as a persistent domain does (still defined, its disks kept,
 * every live change refused: "domain is not running"). setDomainRunning(..., true) starts it again.
 */
export const setDomainShutOff = (stateFile: string, domain: string): Promise<void> => sim(stateFile, ['cc1-sim-shut-off', domain]);
