/**
 * The storage-host documents through the real SSMClient and the local endpoint: a disk
 * file per filesystem, made as CC1 did (mkfs at a 1 MiB offset, msdos label, one
 * partition), checked with blkid and file(1); then deleted. Needs the mkfs tools that
 * scripts/setup-libvirt.sh installs: in CI their absence is a failure, elsewhere a loud skip.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Filesystem } from '../../domain/catalog';
import { SsmStorageHost } from '../../adapters/ssm/ssmHypervisor';
import { type LocalRunCommand, startLocalRunCommand } from '../../local/runCommand/server';
import { STORAGE_HOST_ID, failureKind, newClient } from '../support/libvirtHypervisorSuite';

const TOOLS = ['parted', 'mkfs.vfat', 'mkfs.ext4', 'mkfs.reiserfs', 'mkfs.xfs', 'mkfs.ntfs', 'blkid', 'file', 'truncate'];
const missing = TOOLS.filter((tool) => {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});
if (missing.length && process.env.CI) {
  test('storage tools are installed (required in CI)', () => {
    throw new Error(`missing ${missing.join(', ')}: run "bash scripts/setup-libvirt.sh"`);
  });
} else if (missing.length) {
  console.warn(`\n*** SKIPPING disk-file tests: missing ${missing.join(', ')} (run scripts/setup-libvirt.sh as root)\n`);
}

// blkid's TYPE for each filesystem; xfs refuses to make a filesystem under 300 MB.
const CASES: Array<[Filesystem, number, string]> = [
  ['fat32', 40, 'vfat'],
  ['ext4', 40, 'ext4'],
  ['reiserfs', 40, 'reiserfs'],
  ['xfs', 320, 'xfs'],
  ['ntfs', 40, 'ntfs'],
];

(missing.length ? describe.skip : describe)('disk files on the storage host (SSM documents)', () => {
  jest.setTimeout(60_000);
  let endpoint: LocalRunCommand;
  let client: ReturnType<typeof newClient>;
  let storage: SsmStorageHost;
  let workDir: string;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'cc1-storage-'));
    endpoint = await startLocalRunCommand({ instances: { [STORAGE_HOST_ID]: {} } });
    client = newClient(endpoint.url);
    storage = new SsmStorageHost({ client, storageHostId: STORAGE_HOST_ID, storagePath: join(workDir, 'images'), pollIntervalMs: 50 });
  });
  afterAll(async () => {
    await endpoint.close();
    client.destroy();
    rmSync(workDir, { recursive: true, force: true });
    console.log('disk file creation (ms, through SSM client + endpoint):', JSON.stringify(timings));
  });

  const blkidAt1MiB = (file: string) =>
    execFileSync('blkid', ['-p', '-O', '1048576', '-o', 'value', '-s', 'TYPE', file], { encoding: 'utf8' }).trim();

  it('makes a raw disk of the exact size, with no partition table', async () => {
    const start = performance.now();
    await storage.createDiskFile({ userId: 5, imageId: 100, sizeMb: 10, filesystem: 'raw' });
    timings.raw = Math.round(performance.now() - start);
    const path = storage.pathOf({ userId: 5, imageId: 100 });
    expect(statSync(path).size).toBe(10 * 1024 * 1024);
    expect(execFileSync('file', ['-b', path], { encoding: 'utf8' }).trim()).toBe('data');
  });

  it.each(CASES)('makes a %s disk: msdos label, one partition at 1 MiB holding the filesystem', async (filesystem, sizeMb, blkidType) => {
    const ref = { userId: 5, imageId: 200 + CASES.findIndex(([fs]) => fs === filesystem) };
    const start = performance.now();
    await storage.createDiskFile({ ...ref, sizeMb, filesystem });
    timings[filesystem] = Math.round(performance.now() - start);
    const path = storage.pathOf(ref);
    expect(statSync(path).size).toBe(sizeMb * 1024 * 1024);
    expect(execFileSync('file', ['-b', path], { encoding: 'utf8' })).toMatch(/DOS\/MBR boot sector; partition 1 : ID=0x83.*startsector 2048/);
    expect(blkidAt1MiB(path)).toBe(blkidType);
    // A retry finds the finished file and succeeds without remaking it.
    const mtime = statSync(path).mtimeMs;
    await storage.createDiskFile({ ...ref, sizeMb, filesystem });
    expect(statSync(path).mtimeMs).toBe(mtime);
  });

  it('fails cleanly when the filesystem cannot be made (xfs below 300 MB)', async () => {
    await expect(failureKind(storage.createDiskFile({ userId: 5, imageId: 300, sizeMb: 64, filesystem: 'xfs' }))).resolves.toBe('failed');
    expect(existsSync(storage.pathOf({ userId: 5, imageId: 300 }))).toBe(false);
    expect(execFileSync('ls', ['-A', join(workDir, 'images', '5')], { encoding: 'utf8' })).not.toMatch(/tmp/);
  });

  it('deletes the file, and deleting again is fine', async () => {
    const ref = { userId: 5, imageId: 100 };
    await storage.deleteDiskFile(ref);
    expect(existsSync(storage.pathOf(ref))).toBe(false);
    await storage.deleteDiskFile(ref);
  });
});
