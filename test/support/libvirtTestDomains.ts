/**
 * Test helpers for a real libvirtd + QEMU: is it there, and transient test domains.
 *
 * Domains are q35 with pcie-root-ports and no boot disk: hot-unplug of virtio disks
 * completes without a guest OS only with `ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off`
 * (otherwise virsh says "detached" and the disk stays).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LIBVIRT_URI = 'qemu:///system';

export const virsh = (...args: string[]): string =>
  execFileSync('virsh', ['-c', LIBVIRT_URI, ...args], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });

/** True when `virsh -c qemu:///system version` answers. */
export function libvirtAvailable(): boolean {
  try {
    virsh('version');
    return true;
  } catch {
    return false;
  }
}

/**
 * Decides whether a libvirt suite runs. In CI (`CI` set) a missing libvirt is a failure,
 * never a silent skip: the suite's guard test fails with this message.
 */
export function libvirtSuiteMode(): { run: boolean; missingInCi: boolean } {
  const available = libvirtAvailable();
  if (available) return { run: true, missingInCi: false };
  if (process.env.CI) return { run: false, missingInCi: true };
  console.warn(
    '\n*** libvirt is NOT available (virsh -c qemu:///system version failed): SKIPPING the real-libvirt tests.\n' +
      '*** Run "bash scripts/setup-libvirt.sh" as root to enable them. In CI this is a failure.\n',
  );
  return { run: false, missingInCi: false };
}

const kvmUsable = (): boolean => {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
};

export const domainXml = (name: string, type: 'kvm' | 'qemu' = kvmUsable() ? 'kvm' : 'qemu'): string => `
<domain type='${type}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <controller type='pci' model='pcie-root'/>
    ${"<controller type='pci' model='pcie-root-port'/>\n    ".repeat(6)}
    <controller type='usb' model='qemu-xhci'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-global'/>
    <qemu:arg value='ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off'/>
  </qemu:commandline>
</domain>`;

/** A unique test domain name `vm-<n>-<m>` (SPEC's `vm-<vmId>-<userId>`). */
export const uniqueDomainName = (): string =>
  `vm-${900_000 + Math.floor(Math.random() * 99_999)}-${process.pid % 100_000}`;

/** Starts a transient domain (gone when destroyed). */
export function createTransientDomain(name: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'cc1-domain-'));
  try {
    const file = join(dir, 'domain.xml');
    writeFileSync(file, domainXml(name));
    virsh('create', file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Defines a persistent domain and starts it: destroyed, it stays defined, shut off, with the disks of its config. */
export function createPersistentDomain(name: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'cc1-domain-'));
  try {
    const file = join(dir, 'domain.xml');
    writeFileSync(file, domainXml(name));
    virsh('define', file);
    virsh('start', name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Destroys and undefines a domain, transient or persistent (missing: nothing to do). */
export function removeDomain(name: string): void {
  destroyDomain(name);
  try {
    virsh('undefine', name);
  } catch {
    // transient, or already gone
  }
}

/** `virsh domblkinfo <domain> <dev>` read directly: Capacity (what the guest sees) and Physical (the file), in bytes. */
export function domblkinfo(name: string, dev: string): { capacity: number; physical: number } {
  const field = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)$`, 'm').exec(text)?.[1]);
  const text = virsh('domblkinfo', name, dev);
  return { capacity: field(text, 'Capacity'), physical: field(text, 'Physical') };
}

export function destroyDomain(name: string): void {
  try {
    virsh('destroy', name);
  } catch {
    // already gone
  }
}

/** Targets and sources from `virsh domblklist --details`, read directly (not through SSM). */
export function domblklist(name: string): Array<{ target: string; source: string }> {
  return virsh('domblklist', name, '--details')
    .split('\n')
    .slice(2)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 4)
    .map((cols) => ({ target: cols[2]!, source: cols.slice(3).join(' ') }));
}
