/**
 * The change publisher through the real `@aws-sdk/client-eventbridge` (AWS JSON 1.1,
 * SigV4, `X-Amz-Target: AWSEvents.PutEvents`) against the local events entry
 * (`POST /_local/events`, local/apiServer.ts), fed by the changeNotifications consumer:
 * - accepted changes come back as 200 with FailedEntryCount 0 over the real protocol,
 *   and nothing is reported failed;
 * - a request EventBridge refuses (entries over its 256 KB limit: 400 ValidationException,
 *   as the real bus answers) is an error for the stream, not a change dropped in silence.
 * The 200-with-FailedEntryCount answer (throttling) has no cause the local entry can
 * reproduce from a well-formed change: it is covered with a mocked client in
 * test/unit/change-notifications.unit.test.ts.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { APIGatewayProxyStructuredResultV2, DynamoDBRecord } from 'aws-lambda';
import { EventBridgeChangePublisher } from '../../adapters/eventbridge/changePublisher';
import { toEventItem } from '../../adapters/dynamodb/eventStore';
import type { StorageImageChange } from '../../application/changeNotifications';
import type { StoredEvent } from '../../application/storePorts';
import { changeNotificationsSink } from '../../functions/changeNotifications/sink';
import { PUT_EVENTS_MAX_BYTES, startLocalApi, type LocalApi, type LocalEventEntry } from '../../local/apiServer';
import { attached, created, diskReady, storedStream } from '../support/dynamo';

const BUS = 'cc1-storage-changes';
const USER = 3201;

let api: LocalApi;
const received: LocalEventEntry[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  // The local entry does not check the signature; the SDK still signs.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' });
  const noApi = async (): Promise<APIGatewayProxyStructuredResultV2> => ({ statusCode: 404 });
  api = await startLocalApi({
    restApi: noApi,
    cc1Api: noApi,
    putEvents: async (entries) =>
      entries.map((e, i) => {
        received.push(e);
        return { EventId: `local-${received.length}-${i}` };
      }),
  });
});

afterAll(async () => {
  process.env = savedEnv;
  await api?.close();
});

beforeEach(() => {
  received.length = 0;
});

const publisher = () => new EventBridgeChangePublisher(new EventBridgeClient({ region: 'us-east-1', endpoint: `${api.url}/_local/events`, maxAttempts: 1 }), BUS);

const recordOf = (event: StoredEvent, n: number): DynamoDBRecord => ({
  eventID: `e${n}`,
  eventName: 'INSERT',
  eventSource: 'aws:dynamodb',
  dynamodb: {
    SequenceNumber: String(2000 + n),
    NewImage: marshall(toEventItem(event), { removeUndefinedValues: true }) as NonNullable<DynamoDBRecord['dynamodb']>['NewImage'],
  },
});

test('changes put through the SDK are accepted one entry each (FailedEntryCount 0): no record is reported failed', async () => {
  const events = storedStream(3202, [created(3202, USER), diskReady(USER), attached(USER, 3211, 'vdc')]);

  const response = await changeNotificationsSink(publisher).processBatch({ Records: events.map(recordOf) });

  expect(response.batchItemFailures).toEqual([]);
  expect(received.map((e) => [e.EventBusName, e.Source, e.DetailType])).toEqual(Array(3).fill([BUS, 'cc1.storage', 'Storage Image Change']));
  expect(received.map((e) => JSON.parse(e.Detail as string))).toEqual([
    { imageId: 3202, userId: USER, state: 'adding', vmId: null, diskDev: null, version: 1, cause: { kind: 'user', userId: USER } },
    { imageId: 3202, userId: USER, state: 'ok', vmId: null, diskDev: null, version: 2, cause: { kind: 'system', reason: 'disk-file' } },
    { imageId: 3202, userId: USER, state: 'ok', vmId: 3211, diskDev: 'vdc', version: 3, cause: { kind: 'user', userId: USER } },
  ]);
  // The AWS JSON protocol sends Time as epoch seconds: the event's own time, not the time of the put.
  expect(received.map((e) => e.Time)).toEqual(events.map((e) => Date.parse(e.time) / 1000));
});

test('entries over EventBridge\'s 256 KB limit are refused with ValidationException, and the publish fails (the stream retries)', async () => {
  // No stored event makes a change this large (its fields are checked when read back):
  // the change is built here to reach the limit the bus enforces.
  const huge: StorageImageChange = { imageId: 3203, userId: USER, state: 'ok', vmId: 3211, diskDev: 'x'.repeat(PUT_EVENTS_MAX_BYTES), version: 9, cause: { kind: 'user', userId: USER } };

  const failure = await publisher().publish(huge, new Date().toISOString()).then(
    () => undefined,
    (e: Error) => e,
  );

  expect(failure).toMatchObject({ name: 'ValidationException', message: expect.stringContaining('over the limit') });
  expect(received).toEqual([]);
  // Just under the limit is taken.
  const fits = { ...huge, diskDev: 'x'.repeat(PUT_EVENTS_MAX_BYTES - 1024) };
  await expect(publisher().publish(fits, new Date().toISOString())).resolves.toBeUndefined();
  expect(received).toHaveLength(1);
});
