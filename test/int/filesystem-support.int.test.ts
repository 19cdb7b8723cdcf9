/**
 * application/filesystemSupport against the real CC1-StorageTools document, run with
 * sh by the local Run Command endpoint through the real SSMClient, on a storage host
 * whose PATH is a fresh Debian machine's (test/support/freshPath.ts: no parted,
 * dosfstools, xfsprogs, reiserfsprogs, ntfs-3g). What it cannot make is refused with
 * the tool and the Debian package named; raw and ext4 pass.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { SsmStorageHost } from '../../adapters/ssm/ssmHypervisor';
import { filesystemAvailability, requireFilesystem, TOOLS_CACHE_MS } from '../../application/filesystemSupport';
import { DomainError } from '../../domain/errors';
import { startLocalRunCommand, type LocalRunCommand } from '../../local/runCommand/server';
import { freshPath, onPath, type FreshPath } from '../support/freshPath';
import { newClient } from '../support/libvirtHypervisorSuite';

const FRESH_HOST = 'mi-0000000000000f001';
const FAT_HOST = 'mi-0000000000000f002'; // fresh, plus a mkfs.vfat
const GONE_HOST = 'mi-0000000000000f0ff'; // not a managed instance: never answers

let endpoint: LocalRunCommand;
let client: SSMClient;
let fresh: FreshPath;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'cc1-fs-support-'));
  fresh = freshPath();
  // The document only looks the tool up on PATH; this stand-in is never run.
  const extra = join(workDir, 'bin');
  mkdirSync(extra);
  writeFileSync(join(extra, 'mkfs.vfat'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  endpoint = await startLocalRunCommand({
    instances: { [FRESH_HOST]: { path: fresh.path }, [FAT_HOST]: { path: `${extra}:${fresh.path}` } },
  });
  client = newClient(endpoint.url);
});
afterAll(async () => {
  await endpoint.close();
  client.destroy();
  fresh.cleanup();
  rmSync(workDir, { recursive: true, force: true });
});

/** A new StorageHost object (so a new cache) over the given hosts. */
const storageOn = (...hostIds: string[]) =>
  new SsmStorageHost({
    client,
    pollIntervalMs: 20,
    storages: hostIds.map((hostId, n) => ({ id: `s${n}`, path: join(workDir, `storage-${n}`), hostId })),
  });

const refusal = async (promise: Promise<unknown>): Promise<DomainError> => {
  try {
    await promise;
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
  throw new Error('expected a DomainError, got success');
};

test('the fresh PATH really hides the tools (else this suite proves nothing)', () => {
  for (const tool of ['parted', 'mkfs.vfat', 'mkfs.xfs', 'mkfs.ntfs', 'mkfs.reiserfs', 'sfdisk']) expect(onPath(tool, fresh.path)).toBe(false);
  for (const tool of ['sh', 'truncate', 'dd', 'od', 'mkfs.ext4']) expect(onPath(tool, fresh.path)).toBe(true);
});

test('a fresh host can make raw and ext4, nothing else', async () => {
  expect(await filesystemAvailability(storageOn(FRESH_HOST))).toEqual([
    { id: 0, name: 'raw', available: true },
    { id: 2, name: 'fat32', available: false },
    { id: 5, name: 'ext4', available: true },
    { id: 6, name: 'reiserfs', available: false },
    { id: 7, name: 'xfs', available: false },
    { id: 8, name: 'ntfs', available: false },
  ]);
});

test.each([
  ['fat32', 'mkfs.vfat', 'dosfstools'],
  ['xfs', 'mkfs.xfs', 'xfsprogs'],
  ['reiserfs', 'mkfs.reiserfs', 'reiserfsprogs'],
  ['ntfs', 'mkfs.ntfs', 'ntfs-3g'],
] as const)('%s is refused at once (409 filesystem_unavailable), naming %s and %s', async (filesystem, tool, debianPackage) => {
  const error = await refusal(requireFilesystem(storageOn(FRESH_HOST), filesystem));
  expect([error.code, error.httpStatus, error.message]).toEqual([
    'filesystem_unavailable',
    409,
    `This deployment cannot make ${filesystem} disks: ${tool} is missing on the storage host (Debian package ${debianPackage}).`,
  ]);
});

test('ext4 passes after asking the host; raw passes without asking any host', async () => {
  const before = endpoint.stats.commandsAccepted;
  await requireFilesystem(storageOn(FRESH_HOST), 'raw');
  expect(endpoint.stats.commandsAccepted).toBe(before);
  await requireFilesystem(storageOn(FRESH_HOST), 'ext4');
  expect(endpoint.stats.commandsAccepted).toBe(before + 1);
});

test('with several storages, one host that has the tool is enough; the message says "every storage host" otherwise', async () => {
  await requireFilesystem(storageOn(FRESH_HOST, FAT_HOST), 'fat32');
  expect((await filesystemAvailability(storageOn(FRESH_HOST, FAT_HOST))).find((f) => f.name === 'fat32')?.available).toBe(true);
  const error = await refusal(requireFilesystem(storageOn(FRESH_HOST, FAT_HOST), 'xfs'));
  expect(error.message).toBe('This deployment cannot make xfs disks: mkfs.xfs is missing on every storage host (Debian package xfsprogs).');
});

test('a host that does not answer: no refusal on a guess (503), and none answering is a 503 too', async () => {
  const partly = storageOn(FRESH_HOST, GONE_HOST);
  await requireFilesystem(partly, 'ext4'); // the fresh host has it
  expect(await refusal(requireFilesystem(partly, 'fat32'))).toMatchObject({ code: 'hypervisor_unavailable' });
  expect(await refusal(filesystemAvailability(storageOn(GONE_HOST)))).toMatchObject({ code: 'hypervisor_unavailable' });
});

test('reports are cached for a minute per StorageHost, by the given clock', async () => {
  const storage = storageOn(FRESH_HOST);
  let now = 1_000_000;
  const clock = () => now;
  const sent = () => endpoint.stats.commandsAccepted;
  const start = sent();
  await requireFilesystem(storage, 'ext4', clock);
  expect(sent()).toBe(start + 1);
  now += TOOLS_CACHE_MS - 1;
  await expect(refusal(requireFilesystem(storage, 'fat32', clock))).resolves.toMatchObject({ code: 'filesystem_unavailable' });
  await filesystemAvailability(storage, clock);
  expect(sent()).toBe(start + 1);
  now += 1;
  await filesystemAvailability(storage, clock);
  expect(sent()).toBe(start + 2);
});
