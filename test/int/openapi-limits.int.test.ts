/**
 * docs/openapi.yaml is as strict as the server, and the server as strict as it (issue 19:
 * the document let a name of any length through, repeated storageImageIds, ids up to
 * 2^53-1, and a generated client sent what the server refused).
 *
 * The probes come from the document (test/support/openapiLimits.ts): for every limit of
 * every parameter and body field, values at it and past it, and values far out where it
 * states none. The document (ajv) says whether each value is allowed; the real REST
 * handler, behind the local API Gateway with DynamoDB Local, must answer 400 exactly for
 * the refused ones (`validation`, or `image_invalid_size` for sizes) and anything but 400
 * (and never a 5xx) for the allowed. A value the route checks against stored state (a
 * name on edit) is sent for an image that exists. Seeded: CC1_TEST_SEED replays a run.
 */
import '../../local/localDefaults';
import { signLocalToken } from '../../local/jwt';
import { startLocalStack, type LocalStack } from '../../local/stack';
import { loadOpenapi } from '../support/e2eOpenapi';
import { LIMIT_KEYWORDS, openapiLimits, probeValues, type Probe, type Site } from '../support/openapiLimits';
import { RawClient, type HttpReply } from '../support/reliability';
import { testSeed } from '../support/seed';

jest.setTimeout(300_000);

const seed = testSeed('openapi-limits');
const limits = openapiLimits(loadOpenapi());

/**
 * `nextToken` is opaque: the pattern is its shape, and the server decodes it, so a string
 * of that shape it never gave is refused. What a client sends is a token it was given:
 * the allowed probes send one; the refused ones (the wrong shape) are sent as they are.
 */
const OPAQUE = new Set(['nextToken']);

/** What HTTP carries unchanged in a header: no leading or trailing blank (trimmed), no byte outside field-value. */
const headerCarries = (value: string) => value === value.replace(/^[ \t]+|[ \t]+$/g, '') && !/[^\t\x20-\x7e\x80-\xff]/.test(value);

const probes: Probe[] = limits.sites.flatMap((site, n) =>
  probeValues(site.schema, seed + n)
    .filter(({ value }) => site.in !== 'header' || (typeof value === 'string' && headerCarries(value)))
    // A path segment cannot be empty: that is another route (or none).
    .filter(({ value }) => site.in !== 'path' || value !== '')
    .map(({ value, limit }) => ({ site, value, limit })),
);

let stack: LocalStack;
let client: RawClient;
let nextUser = 9_100_000 + (seed % 100_000) * 10;

beforeAll(async () => {
  stack = await startLocalStack({ hypervisor: 'simulated', reconcileIntervalMs: 0 });
  // Validation needs no disk files and no notifications: leave the hosts idle.
  await Promise.all([stack.diskFeed.stop(), stack.changeFeed.stop()]);
  client = new RawClient(stack.url, 8);
});

afterAll(async () => {
  client?.close();
  await stack?.close();
});

const tokenFor = (userId: number, path: string) => signLocalToken({ userId, ...(path.startsWith('/admin') ? { admin: true } : {}), ...(path.startsWith('/vms') ? { portal: true } : {}) });

const send = async (userId: number, method: string, path: string, options: { query?: URLSearchParams; body?: unknown; headers?: Record<string, string> } = {}): Promise<HttpReply> => {
  const query = options.query?.toString();
  return client.send({
    method,
    path: query ? `${path}?${query}` : path,
    token: await tokenFor(userId, path),
    ...(options.body !== undefined ? { body: options.body } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });
};

/** An image of `userId`, made through the API. */
const imageOf = async (userId: number, name = 'fixture'): Promise<number> => {
  const reply = await send(userId, 'POST', '/storage-images', { body: { name, diskController: 'virtio', sizeMb: 1 } });
  if (reply.status !== 201) throw new Error(`fixture image: ${reply.status} ${reply.text}`);
  return (reply.json as { id: number }).id;
};

/** A nextToken the operation itself gave (its list or history has a second page). */
const realToken = async (userId: number, site: Site, imageId: number | undefined): Promise<string> => {
  const { path } = site.operation;
  if (path.includes('{id}')) {
    const edit = await send(userId, 'PATCH', `/storage-images/${imageId}`, { body: { description: 'a second event' } });
    if (edit.status !== 200) throw new Error(`fixture edit: ${edit.status} ${edit.text}`);
  } else {
    await imageOf(userId, 'second');
  }
  const reply = await send(userId, 'GET', path.replace('{id}', String(imageId)), { query: new URLSearchParams({ limit: '1' }) });
  const token = (reply.json as { nextToken?: string }).nextToken;
  if (!token) throw new Error(`no nextToken from ${path}: ${reply.text}`);
  return token;
};

interface Outcome {
  probe: Probe;
  sent: unknown;
  allowed: boolean;
  status: number;
  code?: string;
}

const run = async (probe: Probe): Promise<Outcome> => {
  const { site } = probe;
  const userId = nextUser++;
  const allowed = limits.allows(site, probe.value);
  const probesPathId = site.in === 'path' && site.name === 'id';
  // The routes on an image check some fields against it: give them one that exists.
  const imageId = site.operation.pathParams.includes('id') && !probesPathId ? await imageOf(userId) : undefined;
  let value = probe.value;
  if (OPAQUE.has(site.name) && allowed) value = await realToken(userId, site, imageId);
  const fixtures: Record<string, string> = { id: String(imageId), userId: String(userId), vmId: '4242' };
  const pathValue = (name: string) => encodeURIComponent(site.in === 'path' && site.name === name ? String(value) : fixtures[name]!);
  const path = site.operation.path.replace(/\{(\w+)\}/g, (_, name: string) => pathValue(name));
  const query = new URLSearchParams(site.in === 'query' ? { [site.name]: String(value) } : {});
  const headers = site.in === 'header' ? { [site.name.toLowerCase()]: String(value) } : undefined;
  const body = site.operation.baseline === undefined ? undefined : site.in === 'body' ? limits.bodyWith(site, value) : site.operation.baseline;
  const reply = await send(userId, site.operation.method, path, { query, body, ...(headers ? { headers } : {}) });
  const code = (reply.json as { error?: { code?: string } } | undefined)?.error?.code;
  return { probe, sent: value, allowed, status: reply.status, ...(code ? { code } : {}) };
};

/** Runs the probes `width` at a time (each has its own user, so none sees another's writes). */
const runAll = async (all: Probe[], width: number): Promise<Outcome[]> => {
  const outcomes: Outcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < all.length) outcomes.push(await run(all[next++]!));
    }),
  );
  return outcomes;
};

const show = (o: Outcome) => {
  const text = JSON.stringify(o.sent);
  return `${o.probe.site.operation.key} ${o.probe.site.in} ${o.probe.site.name} [${o.probe.limit}] = ${text.length > 60 ? `${text.slice(0, 40)}... (${[...String(o.sent)].length} chars)` : text}: document ${o.allowed ? 'allows' : 'refuses'}, server ${o.status}${o.code ? ` ${o.code}` : ''}`;
};

test('the document finds the limits it states (a walker that sees none would prove nothing)', () => {
  const stated = new Set(probes.map((p) => `${p.site.operation.key} ${p.site.in} ${p.site.name} ${p.limit}`));
  for (const expected of [
    'POST /storage-images body name maxLength',
    'POST /storage-images body name minLength',
    'POST /storage-images body description maxLength',
    'POST /storage-images body sizeMb maximum',
    'POST /storage-images body sizeMb when {"filesystem":"xfs"} minimum',
    'POST /storage-images body description pattern',
    'POST /storage-images/{id}/attach body vmId maximum',
    'PATCH /storage-images/{id} body name maxLength',
    'POST /vms/{vmId}/disks body storageImageIds uniqueItems',
    'POST /vms/{vmId}/disks body storageImageIds maxItems',
    'POST /storage-images header Idempotency-Key pattern',
    'GET /storage-images query limit maximum',
  ]) {
    expect(stated).toContain(expected);
  }
});

test('every limit of the document is met by the server: 400 exactly past it, never at it', async () => {
  const outcomes = await runAll(probes, 6);
  const disagreements = outcomes.filter((o) => {
    const refused = o.status === 400 && (o.code === 'validation' || o.code === 'image_invalid_size');
    return o.status >= 500 || (o.allowed ? o.status === 400 : !refused);
  });
  expect(disagreements.map(show)).toEqual([]);

  // Each stated limit was probed on both sides: some value the document allows, some it refuses.
  const sides = new Map<string, Set<boolean>>();
  for (const o of outcomes) {
    if (!(LIMIT_KEYWORDS as readonly string[]).includes(o.probe.limit)) continue;
    const key = `${o.probe.site.operation.key} ${o.probe.site.in} ${o.probe.site.name} ${o.probe.limit}`;
    sides.set(key, (sides.get(key) ?? new Set()).add(o.allowed));
  }
  const oneSided = [...sides].filter(([, s]) => s.size < 2).map(([key, s]) => `${key}: only ${[...s][0] ? 'allowed' : 'refused'} values`);
  expect(oneSided).toEqual([]);
  process.stdout.write(`openapi-limits: ${outcomes.length} probes over ${limits.sites.length} sites of ${limits.operations.length} operations\n`);
});
