/**
 * The SSM documents against a REAL libvirtd + QEMU (transient q35 domains, no boot
 * disk). Required in CI: without libvirt this suite fails when CI is set, and only
 * skips (loudly) on a developer machine. Set it up with `bash scripts/setup-libvirt.sh`.
 */
import { spawnSync } from 'node:child_process';
import {
  LIBVIRT_URI,
  createPersistentDomain,
  createTransientDomain,
  destroyDomain,
  domblklist,
  libvirtSuiteMode,
  removeDomain,
} from '../support/libvirtTestDomains';
import { describeHypervisorSuite } from '../support/libvirtHypervisorSuite';

const mode = libvirtSuiteMode();

if (mode.missingInCi) {
  test('libvirt is available (required in CI)', () => {
    throw new Error(`CI is set but "virsh -c ${LIBVIRT_URI} version" does not answer: run "bash scripts/setup-libvirt.sh" first`);
  });
}

describeHypervisorSuite(
  {
    name: 'real libvirt',
    instance: () => ({ virsh: 'libvirt', libvirtUri: LIBVIRT_URI }),
    startDomain: async (name) => createTransientDomain(name),
    stopDomain: async (name) => destroyDomain(name),
    targets: async (name) => domblklist(name),
    virsh: (args) => {
      const r = spawnSync('virsh', ['-c', LIBVIRT_URI, ...args], { encoding: 'utf8', timeout: 30_000 });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    startPersistentDomain: async (name) => createPersistentDomain(name),
    shutOff: async (name) => destroyDomain(name),
    removeDomain: async (name) => removeDomain(name),
  },
  mode.run ? describe : describe.skip,
);
