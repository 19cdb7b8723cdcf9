/**
 * One correlation id follows a request (issue 14): the id of the API request that creates
 * an image is on its Created event, and the disk-file reaction to that event, run from the
 * stream by another handler, logs under the same id.
 */
import { startE2eStack, waitFor, type E2eStack } from '../support/e2eStack';

let stack: E2eStack;
let user: string;

beforeAll(async () => {
  stack = await startE2eStack({ env: { POWERTOOLS_LOG_LEVEL: 'INFO', CC1_HYPERVISOR: 'simulated' } });
  user = await stack.token(3131);
});
afterAll(() => stack?.stop());

/** The JSON log lines the stack printed. */
const logLines = (): Record<string, unknown>[] =>
  stack
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    });

test("the create request's id is on the log line of the disk-file reaction to it", async () => {
  const created = await stack.rest('POST', '/storage-images', { token: user, body: { name: 'traced', diskController: 'virtio', filesystem: 'raw', sizeMb: 8 } });
  expect(created.status).toBe(201);
  const requestId = created.headers.get('x-request-id');
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  await waitFor(
    () => stack.rest('GET', `/storage-images/${created.body.id}`, { token: user }),
    (r) => r.body.state === 'ok',
  );
  const reaction = logLines().find((l) => l.message === 'disk file made' && l.imageId === created.body.id);
  expect(reaction).toMatchObject({ correlation_id: requestId });
  // Another request's reaction carries another id: the id is the request's, not the process's.
  const other = await stack.rest('POST', '/storage-images', { token: user, body: { name: 'other', diskController: 'virtio', filesystem: 'raw', sizeMb: 8 } });
  await waitFor(
    () => stack.rest('GET', `/storage-images/${other.body.id}`, { token: user }),
    (r) => r.body.state === 'ok',
  );
  const otherLine = logLines().find((l) => l.message === 'disk file made' && l.imageId === other.body.id);
  expect(otherLine).toMatchObject({ correlation_id: other.headers.get('x-request-id') });
  expect(otherLine!.correlation_id).not.toBe(requestId);
});
