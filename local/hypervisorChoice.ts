/**
 * Which hypervisor back end local mode uses (SPEC 4.5), from CC1_HYPERVISOR:
 * - `libvirt`: the real libvirtd on this machine (qemu:///system);
 * - `simulated`: local/simulatedVirsh/virsh with its state file;
 * - `auto` (default): libvirt when `virsh -c qemu:///system version` answers, else simulated.
 */
import { execFile } from 'node:child_process';

export type HypervisorKind = 'libvirt' | 'simulated';

export interface HypervisorChoice {
  kind: HypervisorKind;
  /** A sentence to print at start-up. */
  sentence: string;
}

export const LOCAL_LIBVIRT_URI = 'qemu:///system';

/** Resolves true when a real libvirtd answers on qemu:///system within the timeout. */
export const libvirtAnswers = (timeoutMs = 5_000): Promise<boolean> =>
  new Promise((resolve) => {
    execFile('virsh', ['-c', LOCAL_LIBVIRT_URI, 'version'], { timeout: timeoutMs }, (error) => resolve(!error));
  });

export async function chooseHypervisor(
  setting: string | undefined = process.env.CC1_HYPERVISOR,
  probe: () => Promise<boolean> = libvirtAnswers,
): Promise<HypervisorChoice> {
  const wanted = (setting ?? 'auto').trim() || 'auto';
  if (wanted === 'simulated') {
    return { kind: 'simulated', sentence: 'Hypervisor: simulated virsh (CC1_HYPERVISOR=simulated); no real VMs are touched.' };
  }
  if (wanted !== 'auto' && wanted !== 'libvirt') {
    throw new Error(`CC1_HYPERVISOR must be auto, libvirt or simulated, not "${wanted}"`);
  }
  const answers = await probe();
  if (wanted === 'libvirt') {
    if (!answers) {
      throw new Error(
        `CC1_HYPERVISOR=libvirt but "virsh -c ${LOCAL_LIBVIRT_URI} version" does not answer: run "bash scripts/setup-libvirt.sh" (as root)`,
      );
    }
    return { kind: 'libvirt', sentence: `Hypervisor: real libvirt at ${LOCAL_LIBVIRT_URI} (CC1_HYPERVISOR=libvirt).` };
  }
  return answers
    ? { kind: 'libvirt', sentence: `Hypervisor: real libvirt at ${LOCAL_LIBVIRT_URI} (found by CC1_HYPERVISOR=auto).` }
    : {
        kind: 'simulated',
        sentence: `Hypervisor: simulated virsh, because libvirt does not answer at ${LOCAL_LIBVIRT_URI} (CC1_HYPERVISOR=auto; run scripts/setup-libvirt.sh for the real one).`,
      };
}
