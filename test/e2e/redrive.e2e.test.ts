/**
 * `npm run ops -- repair redrive-disk-files` over HTTP against `tsx local/main.ts`
 * (SPEC 4.7, issue 13): the storage host's SSM agent goes away (`POST
 * /_local/hosts-offline/<id>`: its commands end DeliveryTimedOut, as SSM ends them) long
 * enough for the disk-file reaction to give up on a record (10 retries, then the dead
 * letter, in the SQS shape, `GET /_local/stream-dead-letters`); the host comes back; the
 * redrive reads the records again from DynamoDB Local's Streams API, runs them through
 * the diskFiles consumer, and deletes the letter. A second run finds nothing to do.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_STORAGE_HOST_ID } from '../../local/stack';
import { REPO_ROOT, startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

jest.setTimeout(120_000);

let stack: E2eStack;
let admin: string;
const MiB = 1024 * 1024;

beforeAll(async () => {
  stack = await startE2eStack();
  admin = await stack.token(1, { admin: true });
});
afterAll(() => stack?.stop());

const fileOf = (userId: number, imageId: number) => join(stack.dataDir, 'storage', String(userId), String(imageId));

const ops = (...args: string[]) =>
  new Promise<{ code: number; lines: any[]; err: string }>((resolve) => {
    execFile(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), ['ops/cli.ts', ...args], { cwd: REPO_ROOT, env: { ...process.env, CC1_DATA_DIR: stack.dataDir } }, (error, out, err) =>
      resolve({
        code: error ? Number((error as { code?: number }).code ?? 1) : 0,
        lines: out
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => JSON.parse(l)),
        err,
      }),
    );
  });

const diskLetters = async () => (await stack.call('GET', '/_local/stream-dead-letters')).body.diskFiles as Array<{ requestContext: { requestId: string } }>;

/** The storage host's agent is unreachable until `back()`. */
const storageHostDown = async () => {
  expect((await stack.call('POST', `/_local/hosts-offline/${LOCAL_STORAGE_HOST_ID}`)).status).toBe(204);
  return { back: async () => expect((await stack.call('DELETE', `/_local/hosts-offline/${LOCAL_STORAGE_HOST_ID}`)).status).toBe(204) };
};

/** Waits until the reaction gave up on one more record (its retries spent) and returns that letter's request id. */
const nextDeadLetter = async (before: number) => {
  const letters = await waitFor(diskLetters, (l) => l.length > before, 60_000);
  return letters[before]!.requestContext.requestId;
};

const image = (id: number) => stack.rest('GET', `/admin/storage-images/${id}`, { token: admin }).then((r) => r.body);

test('a Revoked given up while the storage host was down: the redrive removes the file and deletes the letter; a second run is a no-op', async () => {
  const ann = 401;
  const annT = await stack.token(ann);
  const made = await stack.rest('POST', '/storage-images', { token: annT, body: { name: 'data', diskController: 'virtio', sizeMb: 4 } });
  expect(made.status).toBe(201);
  await waitFor(() => image(made.body.id), (i) => i.state === 'ok');
  expect(statSync(fileOf(ann, made.body.id)).size).toBe(4 * MiB);

  const before = (await diskLetters()).length;
  const host = await storageHostDown();
  expect((await stack.rest('DELETE', `/storage-images/${made.body.id}`, { token: annT })).body.state).toBe('locked');
  const letter = await nextDeadLetter(before);
  await host.back();
  // The stream moved on: nothing else will remove the file.
  expect(existsSync(fileOf(ann, made.body.id))).toBe(true);

  const run = await ops('repair', 'redrive-disk-files');
  expect(run.code).toBe(0);
  expect(run.lines).toContainEqual(expect.objectContaining({ letter, outcome: 'redriven', records: 1, deleted: true }));
  expect(run.lines.at(-1)).toEqual({ letters: before + 1, redriven: before + 1, swept: 0, kept: 0 });
  expect(existsSync(fileOf(ann, made.body.id))).toBe(false);
  expect(await diskLetters()).toEqual([]);

  const again = await ops('repair', 'redrive-disk-files');
  expect(again.code).toBe(0);
  expect(again.lines).toEqual([{ letters: 0, redriven: 0, swept: 0, kept: 0 }]);
});

test('a Created given up while the storage host was down: the redrive makes the file and the image ends ok', async () => {
  const bob = 402;
  const bobT = await stack.token(bob);
  const before = (await diskLetters()).length;
  const host = await storageHostDown();
  const made = await stack.rest('POST', '/storage-images', { token: bobT, body: { name: 'late', diskController: 'virtio', sizeMb: 6 } });
  expect(made.status).toBe(201);
  const letter = await nextDeadLetter(before);
  await host.back();
  expect((await image(made.body.id)).state).toBe('adding');

  // While the letter's record fails again, it is kept (and said why).
  const down = await storageHostDown();
  const failed = await ops('repair', 'redrive-disk-files');
  expect(failed.code).toBe(1);
  expect(failed.lines).toContainEqual(expect.objectContaining({ letter, outcome: 'failed', kept: true, error: expect.any(String) }));
  expect((await diskLetters()).map((l) => l.requestContext.requestId)).toContain(letter);
  await down.back();

  const run = await ops('repair', 'redrive-disk-files');
  expect(run.code).toBe(0);
  expect(run.lines).toContainEqual(expect.objectContaining({ letter, outcome: 'redriven', deleted: true }));
  const ready = await waitFor(() => image(made.body.id), (i) => i.state !== 'adding');
  expect(ready.state).toBe('ok');
  expect(statSync(fileOf(bob, made.body.id)).size).toBe(6 * MiB);
  const history = (await stack.rest('GET', `/admin/storage-images/${made.body.id}/history`, { token: admin })).body.items.map((e: { type: string }) => e.type);
  expect(history).toEqual(['StorageImageCreated', 'StorageImageDiskReady']);

  expect((await ops('repair', 'redrive-disk-files')).lines).toEqual([{ letters: 0, redriven: 0, swept: 0, kept: 0 }]);
});
