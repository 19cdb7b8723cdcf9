/** The SSM adapter's error paths, with the SSM client mocked (aws-sdk-client-mock). */
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  InvalidInstanceId,
  InvocationDoesNotExist,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { HostCommandError, type HostFailureKind } from '../../application/ports';
import { SsmHypervisor, SsmStorageHost, parseDiskList } from '../../adapters/ssm/ssmHypervisor';

const ssm = mockClient(SSMClient);
const client = new SSMClient({ region: 'us-east-1' });
const hypervisor = new SsmHypervisor({ client, timeoutMs: 600, pollIntervalMs: 10, documentNames: { attachDisk: 'Stack-Attach' } });
const target = { hostId: 'i-0123456789abcdef0', domain: 'vm-12-34' };
const attach = () => hypervisor.attachDisk({ ...target, file: '/srv/cc1/34/5', dev: 'vdb', bus: 'virtio' });

const kindOf = async (p: Promise<unknown>): Promise<[HostFailureKind, HostCommandError]> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof HostCommandError) return [e.kind, e];
    throw e;
  }
  throw new Error('expected failure');
};

beforeEach(() => {
  ssm.reset();
  ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
  ssm.on(CancelCommandCommand).resolves({});
});

it('sends the configured document to one instance with one value per parameter, and succeeds on Success', async () => {
  ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'CC1_OK' });
  await attach();
  const input = ssm.commandCalls(SendCommandCommand)[0]!.args[0].input;
  expect(input).toMatchObject({
    DocumentName: 'Stack-Attach',
    InstanceIds: [target.hostId],
    Parameters: { Domain: ['vm-12-34'], File: ['/srv/cc1/34/5'], Dev: ['vdb'], Bus: ['virtio'], LibvirtUri: ['qemu:///system'] },
  });
});

it('retries InvocationDoesNotExist right after sending, and waits through Pending/InProgress', async () => {
  ssm
    .on(GetCommandInvocationCommand)
    .rejectsOnce(new InvocationDoesNotExist({ message: 'no', $metadata: {} }))
    .rejectsOnce(new InvocationDoesNotExist({ message: 'no', $metadata: {} }))
    .resolvesOnce({ Status: 'Pending' })
    .resolvesOnce({ Status: 'InProgress' })
    .resolves({ Status: 'Success', ResponseCode: 0 });
  await attach();
  expect(ssm.commandCalls(GetCommandInvocationCommand)).toHaveLength(5);
});

it('maps the unknown-domain exit code to unknown_domain, keeping stderr in detail only', async () => {
  ssm.on(GetCommandInvocationCommand).resolves({
    Status: 'Failed',
    ResponseCode: 10,
    StandardErrorContent: "CC1_ERROR=unknown_domain: error: failed to get domain 'vm-12-34'",
  });
  const [kind, error] = await kindOf(attach());
  expect(kind).toBe('unknown_domain');
  expect(error.message).not.toContain('CC1_ERROR');
  expect(error.detail).toContain("failed to get domain 'vm-12-34'");
});

it.each([
  [{ Status: 'Failed', ResponseCode: 11, StandardErrorContent: "error: target 'vdb' duplicated" }, 'failed'],
  [{ Status: 'Failed', ResponseCode: 12 }, 'failed'],
  [{ Status: 'Failed', StatusDetails: 'Undeliverable', ResponseCode: -1 }, 'unreachable'],
  [{ Status: 'Failed', StatusDetails: 'Terminated', ResponseCode: -1 }, 'unreachable'],
  [{ Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut', ResponseCode: -1 }, 'unreachable'],
  [{ Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut', ResponseCode: -1 }, 'timeout'],
  [{ Status: 'Cancelled', StatusDetails: 'Cancelled', ResponseCode: -1 }, 'failed'],
] as const)('maps invocation %j to %s', async (invocation, expected) => {
  ssm.on(GetCommandInvocationCommand).resolves(invocation);
  const [kind, error] = await kindOf(attach());
  expect(kind).toBe(expected);
  expect(error.detail).toContain(`status ${invocation.Status}`);
});

it('maps InvalidInstanceId on SendCommand to unreachable', async () => {
  ssm.on(SendCommandCommand).rejects(new InvalidInstanceId({ message: 'unknown', $metadata: {} }));
  expect((await kindOf(attach()))[0]).toBe('unreachable');
});

it('maps a network failure to unreachable', async () => {
  ssm.on(SendCommandCommand).rejects(Object.assign(new Error('connect ECONNREFUSED'), { name: 'Error' }));
  expect((await kindOf(attach()))[0]).toBe('unreachable');
});

it('cancels the command and reports timeout when no final status comes within the bound', async () => {
  ssm.on(GetCommandInvocationCommand).resolves({ Status: 'InProgress' });
  const [kind, error] = await kindOf(attach());
  expect(kind).toBe('timeout');
  // It stopped asking at the bound: at most one poll per interval of the 600 ms (the first after 100 ms),
  // then one CancelCommand, after the last poll.
  const polls = ssm.commandCalls(GetCommandInvocationCommand);
  expect(polls.length).toBeGreaterThan(0);
  expect(polls.length).toBeLessThanOrEqual((600 - 100) / 10 + 1);
  const cancels = ssm.commandCalls(CancelCommandCommand);
  expect(cancels.map((c) => c.args[0].input)).toEqual([{ CommandId: 'cmd-1', InstanceIds: [target.hostId] }]);
  expect(cancels[0]!.calledAfter(polls.at(-1)!)).toBe(true);
  expect(error.detail).toContain('cmd-1');
  expect(error.detail).toContain('last status InProgress');
});

it('also times out when the invocation never appears', async () => {
  ssm.on(GetCommandInvocationCommand).rejects(new InvocationDoesNotExist({ message: 'no', $metadata: {} }));
  expect((await kindOf(attach()))[0]).toBe('timeout');
});

it('refuses invalid values without calling SSM', async () => {
  const [kind] = await kindOf(hypervisor.detachDisk({ ...target, dev: 'vdb; reboot' }));
  expect(kind).toBe('failed');
  expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
});

it('parses the ListDisks output, sources with spaces included', async () => {
  ssm.on(GetCommandInvocationCommand).resolves({
    Status: 'Success',
    ResponseCode: 0,
    StandardOutputContent: 'CC1_DISK\tfile\tdisk\tvda\t/var/lib/a b.img\nCC1_DISK\tfile\tcdrom\tsdz\t-\nnoise\n',
  });
  await expect(hypervisor.listDisks(target)).resolves.toEqual([
    { dev: 'vda', source: '/var/lib/a b.img' },
    { dev: 'sdz', source: '-' },
  ]);
  expect(parseDiskList('')).toEqual([]);
});

it('storage host: path and parameters', async () => {
  ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0 });
  const storage = new SsmStorageHost({ client, storageHostId: 'mi-0aaaaaaaaaaaaaaaa', storagePath: '/srv/cc1', pollIntervalMs: 10 });
  expect(storage.pathOf({ userId: 34, imageId: 5 })).toBe('/srv/cc1/34/5');
  await storage.createDiskFile({ userId: 34, imageId: 5, sizeMb: 2048, filesystem: 'ext4' });
  expect(ssm.commandCalls(SendCommandCommand)[0]!.args[0].input).toMatchObject({
    DocumentName: 'CC1-CreateDiskFile',
    InstanceIds: ['mi-0aaaaaaaaaaaaaaaa'],
    Parameters: { StoragePath: ['/srv/cc1'], UserId: ['34'], ImageId: ['5'], SizeMb: ['2048'], Filesystem: ['ext4'] },
  });
});

describe('several storages', () => {
  const storage = new SsmStorageHost({
    client,
    pollIntervalMs: 10,
    storages: [
      { id: 'default', path: '/srv/a', hostId: 'mi-0aaaaaaaaaaaaaaaa' },
      { id: 'big', path: '/srv/b', hostId: 'mi-0bbbbbbbbbbbbbbbb' },
    ],
  });

  it('paths: the image storage, or default for an image without one', () => {
    expect(storage.storageIds).toEqual(['default', 'big']);
    expect(storage.pathOf({ userId: 3, imageId: 4, storage: 'big' })).toBe('/srv/b/3/4');
    expect(storage.pathOf({ userId: 3, imageId: 4 })).toBe('/srv/a/3/4');
    expect(() => storage.pathOf({ userId: 3, imageId: 4, storage: 'gone' })).toThrow(/not configured/);
  });

  it('create, delete and free space run on that storage host with its path', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'CC1_FREE_MB=1234\n' });
    await storage.createDiskFile({ userId: 3, imageId: 4, sizeMb: 10, filesystem: 'raw', storage: 'big' });
    await storage.deleteDiskFile({ userId: 3, imageId: 4, storage: 'big' });
    await expect(storage.freeSpaceMb('big')).resolves.toBe(1234);
    const inputs = ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input);
    expect(inputs.map((i) => [i.DocumentName, i.InstanceIds, i.Parameters!.StoragePath])).toEqual([
      ['CC1-CreateDiskFile', ['mi-0bbbbbbbbbbbbbbbb'], ['/srv/b']],
      ['CC1-DeleteDiskFile', ['mi-0bbbbbbbbbbbbbbbb'], ['/srv/b']],
      ['CC1-StorageFreeSpace', ['mi-0bbbbbbbbbbbbbbbb'], ['/srv/b']],
    ]);
  });

  it('mkfs tools: the CC1_MKFS lines of that storage host; no end marker is a failure', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'Success',
      ResponseCode: 0,
      StandardOutputContent: 'CC1_MKFS=mkfs.ext4\nCC1_MKFS=mkfs.xfs\nCC1_TOOLS_END\n',
    });
    await expect(storage.mkfsTools('big')).resolves.toEqual(['mkfs.ext4', 'mkfs.xfs']);
    const input = ssm.commandCalls(SendCommandCommand)[0]!.args[0].input;
    expect([input.DocumentName, input.InstanceIds, input.Parameters]).toEqual(['CC1-StorageTools', ['mi-0bbbbbbbbbbbbbbbb'], {}]);
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'CC1_MKFS=mkfs.ext4\n' });
    const [kind] = await kindOf(storage.mkfsTools('big'));
    expect(kind).toBe('failed');
  });

  it('free space without the marker line is a failure', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'hello' });
    const [kind] = await kindOf(storage.freeSpaceMb('default'));
    expect(kind).toBe('failed');
  });
});
