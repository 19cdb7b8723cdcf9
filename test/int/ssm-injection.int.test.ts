/**
 * User text never reaches a shell: hostile parameter values are refused by the
 * documents' allowedPatterns before anything runs, by the local endpoint exactly as by
 * SSM (InvalidParameters) and already by the adapter. Proof: a canary file that every
 * payload would create is never created, and the endpoint never starts a step.
 */
import { SendCommandCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostCommandError } from '../../application/ports';
import { DEFAULT_DOCUMENT_NAMES, DOCUMENTS, type DocumentKey, EXIT } from '../../adapters/ssm/documents';
import { SsmHypervisor, SsmStorageHost } from '../../adapters/ssm/ssmHypervisor';
import { type LocalRunCommand, startLocalRunCommand } from '../../local/runCommand/server';
import { setDomainRunning } from '../../local/simulatedVirsh/simulatedHosts';
import { HOST_ID, newClient } from '../support/libvirtHypervisorSuite';

const dir = mkdtempSync(join(tmpdir(), 'cc1-inject-'));
const canary = join(dir, 'canary');
const stateFile = join(dir, 'virsh-state.json');

const payloads = [
  `vdb; touch ${canary}`,
  `vdb && touch ${canary}`,
  `vdb | touch ${canary}`,
  `$(touch ${canary})`,
  `\`touch ${canary}\``,
  `vdb\ntouch ${canary}`,
  `vm-1-2\ntouch ${canary}`,
  'vdb\n',
  `vdb'; touch ${canary}; echo '`,
  `vdb"; touch ${canary}; echo "`,
  `vdb$IFS`,
  '../../etc/passwd',
  '/srv/cc1/../../etc/passwd',
  '/etc/passwd;id',
  '-rf',
  '--config',
  '',
  ' vdb',
  'vdb ',
  'ｖdb',
  'qemu:///system; touch x',
  'qemu+ssh://evil.example/system?command=touch',
];

const documentKeys = Object.keys(DOCUMENTS) as DocumentKey[];

/** A valid value for each parameter of a document. */
const valid: Record<string, string> = {
  Domain: 'vm-1-2',
  File: join(dir, 'disk'),
  Dev: 'vdb',
  Bus: 'virtio',
  LibvirtUri: 'qemu:///system',
  WaitSeconds: '1',
  StoragePath: join(dir, 'storage'),
  UserId: '7',
  ImageId: '9',
  SizeMb: '1',
  Filesystem: 'raw',
};

describe('SSM parameter injection', () => {
  let endpoint: LocalRunCommand;
  let client: SSMClient;

  beforeAll(async () => {
    endpoint = await startLocalRunCommand({ instances: { [HOST_ID]: { virsh: 'simulated', simulatedStateFile: stateFile } } });
    client = newClient(endpoint.url);
  });
  afterAll(async () => {
    await endpoint.close();
    client.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('documents use only ENV_VAR interpolation, no {{ }} in scripts, and anchored patterns on every parameter', () => {
    for (const key of documentKeys) {
      const doc = DOCUMENTS[key].content;
      for (const step of doc.mainSteps) {
        expect(step.inputs.interpolationType).toBe('ENV_VAR');
        expect(step.inputs.runCommand.join('\n')).not.toContain('{{');
      }
      for (const spec of Object.values(doc.parameters)) {
        expect(spec.allowedPattern).toMatch(/^\^.*\$$/);
        if (spec.default !== undefined) expect(spec.default).toMatch(new RegExp(spec.allowedPattern));
      }
    }
  });

  const cases = documentKeys.flatMap((key) =>
    Object.keys(DOCUMENTS[key].content.parameters).flatMap((parameter) =>
      payloads.map((payload) => [key, parameter, payload] as const),
    ),
  );

  it(`the endpoint refuses all ${cases.length} hostile values with InvalidParameters and runs nothing`, async () => {
    for (const [key, parameter, payload] of cases) {
      const parameters = Object.fromEntries(Object.keys(DOCUMENTS[key].content.parameters).map((p) => [p, [valid[p]!]]));
      parameters[parameter] = [payload];
      const sent = client.send(
        new SendCommandCommand({ DocumentName: DEFAULT_DOCUMENT_NAMES[key], InstanceIds: [HOST_ID], Parameters: parameters }),
      );
      await expect(sent).rejects.toMatchObject({ name: 'InvalidParameters' });
    }
    expect(endpoint.stats.commandsRejected).toBe(cases.length);
    expect(endpoint.stats.commandsAccepted).toBe(0);
    expect(endpoint.stats.stepsStarted).toBe(0);
    expect(existsSync(canary)).toBe(false);
  });

  it('also refuses unknown parameters, lists of values, missing parameters and unknown documents', async () => {
    const attach = (Parameters: Record<string, string[]>, DocumentName = DEFAULT_DOCUMENT_NAMES.attachDisk) =>
      client.send(new SendCommandCommand({ DocumentName, InstanceIds: [HOST_ID], Parameters }));
    const good = { Domain: ['vm-1-2'], File: [valid.File!], Dev: ['vdb'], Bus: ['virtio'] };
    await expect(attach({ ...good, Extra: [`$(touch ${canary})`] })).rejects.toMatchObject({ name: 'InvalidParameters' });
    await expect(attach({ ...good, Dev: ['vdb', `; touch ${canary}`] })).rejects.toMatchObject({ name: 'InvalidParameters' });
    await expect(attach({ Domain: ['vm-1-2'] })).rejects.toMatchObject({ name: 'InvalidParameters' });
    await expect(attach(good, 'AWS-RunShellScript')).rejects.toMatchObject({ name: 'InvalidDocument' });
    expect(endpoint.stats.stepsStarted).toBe(0);
    expect(existsSync(canary)).toBe(false);
  });

  it('the adapter refuses hostile values itself, before calling SSM', async () => {
    const hypervisor = new SsmHypervisor({ client, pollIntervalMs: 50 });
    const storage = new SsmStorageHost({ client, storageHostId: HOST_ID, storagePath: join(dir, 'storage'), pollIntervalMs: 50 });
    const before = endpoint.stats.commandsRejected;
    for (const payload of payloads) {
      await expect(hypervisor.attachDisk({ hostId: HOST_ID, domain: 'vm-1-2', file: payload, dev: 'vdb', bus: 'virtio' })).rejects.toBeInstanceOf(
        HostCommandError,
      );
      await expect(hypervisor.detachDisk({ hostId: HOST_ID, domain: payload, dev: 'vdb' })).rejects.toMatchObject({ kind: 'failed' });
    }
    const badStorage = new SsmStorageHost({ client, storageHostId: HOST_ID, storagePath: '/srv/../etc', pollIntervalMs: 50 });
    await expect(badStorage.deleteDiskFile({ userId: 1, imageId: 1 })).rejects.toMatchObject({ kind: 'failed' });
    await expect(storage.createDiskFile({ userId: 1, imageId: 1, sizeMb: 0, filesystem: 'raw' })).rejects.toMatchObject({ kind: 'failed' });
    expect(endpoint.stats.commandsRejected).toBe(before); // never sent
    expect(endpoint.stats.stepsStarted).toBe(0);
    expect(existsSync(canary)).toBe(false);
  });

  it('the scripts re-check for newlines even if a pattern engine let one through', () => {
    const script = join(dir, 'attach.sh');
    writeFileSync(script, DOCUMENTS.attachDisk.content.mainSteps[0]!.inputs.runCommand.join('\n'));
    let code = 0;
    try {
      execFileSync('sh', [script], {
        env: { ...process.env, PATH: `/nonexistent:${process.env.PATH}`, SSM_Domain: 'vm-1-2\n', SSM_File: valid.File, SSM_Dev: 'vdb', SSM_Bus: 'virtio', SSM_LibvirtUri: 'test:///default' },
        stdio: 'pipe',
      });
    } catch (e) {
      code = (e as { status: number }).status;
    }
    expect(code).toBe(EXIT.badParameter);
  });

  it('(control) a valid command does run, so the counters above prove something', async () => {
    await setDomainRunning(stateFile, 'vm-1-2', true);
    const hypervisor = new SsmHypervisor({ client, pollIntervalMs: 50 });
    await expect(hypervisor.listDisks({ hostId: HOST_ID, domain: 'vm-1-2' })).resolves.toEqual([]);
    expect(endpoint.stats.stepsStarted).toBe(1);
    expect(existsSync(canary)).toBe(false);
  });
});
