/**
 * The authorization matrix (issue 8): every route of both APIs x {no token, expired
 * token, wrong signature, other user, owner, portal service, admin}, through the local
 * HTTP server. The table in test/support/reliabilityAuthz.ts is the truth; this test
 * runs every cell, and checks that docs/reliability.md carries the same table
 * (UPDATE_RELIABILITY_DOCS=1 rewrites it there).
 *
 * For every refused cell: no event appended, no host command sent, and the reply does
 * not carry the owner's image (its secret name, its disk path).
 */
import '../../local/localDefaults';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { handleCommand } from '../../application/commandHandling';
import { attachAtBoot, createImage, onVmStateChange } from '../../application/storageImages';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { HOST_ID, makeTokens, putVmEvents, RawClient, recordAppends, vmDetail, type AppendRecorder, type Tokens } from '../support/reliability';
import {
  CALLERS,
  CROSS,
  MATRIX,
  MATRIX_END,
  MATRIX_START,
  matrixMarkdown,
  type Fixture,
  type Ids,
  type Who,
} from '../support/reliabilityAuthz';

jest.setTimeout(300_000);

const ids: Ids = { owner: 7201, other: 7202, portal: 7291, admin: 7290 };
const RUNNING_VM = 801; // the owner's
const OTHER_VM = 802; // the other user's
const DOCS = join(__dirname, '..', '..', 'docs', 'reliability.md');
const secret = `secret-${randomBytes(4).toString('hex')}`;

let stack: LocalStack;
let client: RawClient;
let tokens: Tokens;
let recorder: AppendRecorder;
let nextVm = 900;

const tokenOf = (who: Who): string | undefined =>
  who === 'none' ? undefined : { expired: tokens.expired, badSig: tokens.wrongSignature, other: tokens.other, owner: tokens.owner, portal: tokens.portal, admin: tokens.admin }[who];

const stoppedVm = async (userId: number): Promise<number> => {
  const vmId = nextVm++;
  const change = { vmId, userId, domain: `vm-${vmId}-${userId}`, hostId: HOST_ID, state: 'stopped' as const, time: new Date().toISOString(), reason: 'shutdown' };
  await onVmStateChange(stack.container.deps, change);
  return vmId;
};

/** A ready image; no disk file is needed unless it is hot-attached (`withFile`). */
const readyImage = async (userId: number, name: string, withFile = false): Promise<number> => {
  const { deps } = stack.container;
  const view = await createImage(deps, { name, description: '', diskController: 'virtio', filesystem: 'raw', sizeMb: 1 }, { kind: 'user', userId });
  if (!withFile) await handleCommand(deps, view.id, { type: 'MarkDiskReady', storage: 'default' }, { actor: { kind: 'system', reason: 'disk-file' }, now: new Date().toISOString() });
  return view.id;
};

const freshFixture = async (withFile: boolean): Promise<Fixture> => {
  const { deps } = stack.container;
  const [imageId, attachedId, stoppedVmId, bootVmId] = await Promise.all([
    readyImage(ids.owner, `${secret} a`, withFile),
    readyImage(ids.owner, `${secret} b`),
    stoppedVm(ids.owner),
    stoppedVm(ids.owner),
  ]);
  await attachAtBoot(deps, stoppedVmId, ids.owner, [attachedId], { kind: 'portal', userId: ids.owner });
  return { imageId, attachedId, stoppedVmId, bootVmId, runningVmId: RUNNING_VM };
};

/** What a reply says, in the table's words. */
const outcome = (api: 'REST' | 'CC1', status: number, json: unknown): string => {
  if (api === 'CC1' && status === 200) return `200 ${(json as { status?: string })?.status}`;
  const code = (json as { error?: { code?: string } })?.error?.code;
  return status >= 400 && code && status !== 401 ? `${status} ${code}` : String(status);
};

const isSuccess = (cell: string) => /^2\d\d( ok)?$/.test(cell);

interface Checked {
  appended: number;
  label: string;
  expected: string;
  actual: string;
  problems: string[];
}

const runCell = async (label: string, api: 'REST' | 'CC1', who: Who, request: { method: string; path: string; body?: unknown }, expected: string): Promise<Checked> => {
  const before = recorder.appends.length;
  const commandsBefore = stack.runCommand.stats.commandsAccepted + stack.runCommand.stats.commandsRejected;
  const reply = await client.send({ ...request, token: tokenOf(who) });
  const actual = outcome(api, reply.status, reply.json);
  const problems: string[] = [];
  if (!isSuccess(actual)) {
    const appended = recorder.appends.slice(before);
    if (appended.length) problems.push(`refused but appended ${appended.map((e) => `${e.streamId}@${e.version} ${e.type}`).join(', ')}`);
    if (stack.runCommand.stats.commandsAccepted + stack.runCommand.stats.commandsRejected !== commandsBefore) problems.push('refused but sent a host command');
  }
  if (who !== 'owner' && who !== 'admin' && !(who === 'portal' && api === 'CC1') && !(who === 'portal' && request.path.startsWith('/vms/'))) {
    // Not the owner, not an admin, not a portal acting for the owner: nothing of the owner's may show.
    if (reply.text.includes(secret)) problems.push(`the reply leaks the owner's image: ${reply.text.slice(0, 200)}`);
    if (reply.text.includes(`/${ids.owner}/`)) problems.push(`the reply leaks an owner's disk path: ${reply.text.slice(0, 200)}`);
  }
  return { label, expected, actual, problems, appended: recorder.appends.length - before };
};

beforeAll(async () => {
  stack = await startLocalStack({ hypervisor: 'simulated', feedIntervalMs: 3_600_000 });
  client = new RawClient(stack.url, 8);
  tokens = await makeTokens(ids);
  for (const [vmId, userId] of [
    [RUNNING_VM, ids.owner],
    [OTHER_VM, ids.other],
  ] as const) {
    expect((await putVmEvents(client, [vmDetail(vmId, userId, 'running')])).status).toBe(200);
  }
  recorder = recordAppends(stack);
});

afterAll(async () => {
  recorder?.restore();
  client?.close();
  await stack?.close();
});

test('the matrix names every REST route and every CC1 function', () => {
  const { ROUTES } = jest.requireActual('../../functions/restApi/routes') as typeof import('../../functions/restApi/routes');
  const { routeKeyOf } = jest.requireActual('../../functions/shared/routeTable') as typeof import('../../functions/shared/routeTable');
  const { USER_FUNCTIONS, ADMIN_FUNCTIONS, USER_ACCOUNT_FUNCTIONS } = jest.requireActual('../../functions/cc1Api/cc1Functions') as typeof import('../../functions/cc1Api/cc1Functions');
  const expected = [
    ...ROUTES.map(routeKeyOf),
    ...Object.keys(USER_FUNCTIONS).map((fn) => `POST /user/storage_image/${fn}/`),
    ...Object.keys(ADMIN_FUNCTIONS).map((fn) => `POST /admin_cm/storage_image/${fn}/`),
    ...Object.keys(USER_ACCOUNT_FUNCTIONS).map((fn) => `POST /user/user/${fn}/`),
  ].sort();
  expect(MATRIX.map((r) => r.route).sort()).toEqual(expected);
});

test(`every cell: ${MATRIX.length} routes x ${CALLERS.length} callers, and ${CROSS.length} object-level cases`, async () => {
  const shared = await freshFixture(false);
  // Mutating rows: a fixture per cell that gets past the token, made up front.
  const needsFile = (route: string) => /attach|resize/.test(route) && !/detach/.test(route);
  const fixtures = new Map<string, Fixture>();
  const wanted = MATRIX.filter((r) => r.mutates).flatMap((r) => (['other', 'owner', 'portal', 'admin'] as const).map((who) => ({ r, who })));
  for (let i = 0; i < wanted.length; i += 8) {
    await Promise.all(
      wanted.slice(i, i + 8).map(async ({ r, who }) => {
        fixtures.set(`${r.route}|${who}`, await freshFixture(needsFile(r.route)));
      }),
    );
  }
  await stack.drain(); // the disk files of the images that will be hot-attached

  const results: Checked[] = [];
  for (const row of MATRIX) {
    for (const who of CALLERS) {
      const fixture = fixtures.get(`${row.route}|${who}`) ?? shared;
      results.push(await runCell(`${row.api} ${row.route} as ${who}`, row.api, who, row.request(fixture, who, ids), row.expect[who]));
    }
  }
  const crossFixture = { ...(await freshFixture(false)), otherImageId: await readyImage(ids.other, 'the other user’s disk'), otherVmId: OTHER_VM };
  for (const c of CROSS) {
    const request = c.request(crossFixture, ids);
    results.push(await runCell(`cross: ${c.title}`, request.path.startsWith('/user') || request.path.startsWith('/admin_cm') ? 'CC1' : 'REST', c.who, request, c.expect));
  }

  const wrong = results.filter((r) => r.expected !== r.actual || r.problems.length).map((r) => `${r.label}: expected ${r.expected}, got ${r.actual} ${r.problems.join('; ')}`);
  expect(wrong).toEqual([]);
  console.log(
    `authorization matrix: ${results.length} cells checked (${results.filter((r) => isSuccess(r.actual)).length} allowed, ${results.filter((r) => !isSuccess(r.actual)).length} refused), ${results.reduce((n, r) => n + r.appended, 0)} events appended by the allowed ones, none by the refused ones`,
  );
});

test('docs/reliability.md carries this table', () => {
  const table = `${MATRIX_START}\n${matrixMarkdown()}\n${MATRIX_END}`;
  const docs = existsSync(DOCS) ? readFileSync(DOCS, 'utf8') : '';
  const start = docs.indexOf(MATRIX_START);
  const end = docs.indexOf(MATRIX_END);
  if (process.env.UPDATE_RELIABILITY_DOCS === '1') {
    if (start < 0 || end < 0) throw new Error(`docs/reliability.md has no ${MATRIX_START} ... ${MATRIX_END} block to fill`);
    writeFileSync(DOCS, docs.slice(0, start) + table + docs.slice(end + MATRIX_END.length));
    return;
  }
  expect(start >= 0 && end > start ? docs.slice(start, end + MATRIX_END.length) : '(no table)').toBe(table);
});
