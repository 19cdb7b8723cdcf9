/**
 * Change notifications when EventBridge refuses part of what it is given (an error path,
 * so the client is mocked; the accepted path runs against the local events entry in
 * test/int/change-notifications.int.test.ts). PutEvents answers 200 with FailedEntryCount
 * 1 and a ThrottlingException entry: that record and the rest of the batch come back as
 * batchItemFailures, the records before it do not, and the retry from the failed record
 * publishes each remaining change once.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { EventBridgeChangePublisher } from '../../adapters/eventbridge/changePublisher';
import { toEventItem } from '../../adapters/dynamodb/eventStore';
import type { StoredEvent } from '../../application/storePorts';
import { changeNotificationsSink } from '../../functions/changeNotifications/sink';
import { attached, created, detached, diskReady, storedStream } from '../support/dynamo';

const eventBridge = mockClient(EventBridgeClient);
const BUS = 'cc1-storage-changes';
const USER = 31;

/** A stream record of one stored event, as the event source mapping hands it over. */
const recordOf = (event: StoredEvent, n: number): DynamoDBRecord => ({
  eventID: `e${n}`,
  eventName: 'INSERT',
  eventSource: 'aws:dynamodb',
  dynamodb: {
    SequenceNumber: String(1000 + n),
    NewImage: marshall(toEventItem(event), { removeUndefinedValues: true }) as NonNullable<DynamoDBRecord['dynamodb']>['NewImage'],
  },
});

// Four changes of one image: Created (adding), DiskReady (ok), Attached, Detached.
const events = storedStream(3101, [created(3101, USER), diskReady(USER), attached(USER, 3111, 'vdb'), detached(3111, 'vdb')]);
const records = events.map(recordOf);
const seq = (r: DynamoDBRecord) => r.dynamodb!.SequenceNumber!;

const sink = () => changeNotificationsSink(() => new EventBridgeChangePublisher(new EventBridgeClient({ region: 'eu-west-1' }), BUS));
/** The versions put, in order, one entry per call. */
const versionsPut = () => eventBridge.commandCalls(PutEventsCommand).map((c) => (JSON.parse(c.args[0].input.Entries![0]!.Detail!) as { version: number }).version);

const accepted = { FailedEntryCount: 0, Entries: [{ EventId: 'ok' }] };
const throttled = { FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }] };

beforeEach(() => eventBridge.reset());

test('PutEvents answering 200 with a rejected entry fails that record and every later one; earlier ones are acknowledged', async () => {
  eventBridge.on(PutEventsCommand).resolvesOnce(accepted).resolvesOnce(throttled).resolves(accepted);

  const response = await sink().processBatch({ Records: records });

  expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([seq(records[1]!), seq(records[2]!), seq(records[3]!)]);
  // v1 went out; v2 was refused; v3 and v4 were not tried (they would go out again with the retry, and before v2).
  expect(versionsPut()).toEqual([1, 2]);
});

test('the retry from the first failed record publishes each remaining change once: every version reaches the bus exactly once, in order', async () => {
  eventBridge.on(PutEventsCommand).resolvesOnce(accepted).resolvesOnce(throttled).resolves(accepted);
  const consumer = sink();

  const first = await consumer.processBatch({ Records: records });
  // As the event source mapping does: the next batch starts at the lowest failed record.
  const from = records.findIndex((r) => seq(r) === first.batchItemFailures[0]!.itemIdentifier);
  const retry = await consumer.processBatch({ Records: records.slice(from) });

  expect(retry.batchItemFailures).toEqual([]);
  const published = eventBridge.commandCalls(PutEventsCommand).filter((_, i) => i !== 1); // call 1 was refused
  expect(published.map((c) => JSON.parse(c.args[0].input.Entries![0]!.Detail!).version)).toEqual([1, 2, 3, 4]);
});

test('the entry names the bus, the source and detail-type of a Storage Image Change, and the image as it is after the event', async () => {
  eventBridge.on(PutEventsCommand).resolves(accepted);

  await sink().processBatch({ Records: [records[2]!] });

  const entry = eventBridge.commandCalls(PutEventsCommand)[0]!.args[0].input.Entries![0]!;
  expect(entry).toMatchObject({ EventBusName: BUS, Source: 'cc1.storage', DetailType: 'Storage Image Change', Time: new Date(events[2]!.time) });
  expect(JSON.parse(entry.Detail!)).toEqual({ imageId: 3101, userId: USER, state: 'ok', vmId: 3111, diskDev: 'vdb', version: 3, cause: { kind: 'user', userId: USER } });
});

test('a PutEvents call that fails outright (500 after the SDK\'s retries) fails its record the same way', async () => {
  eventBridge.on(PutEventsCommand).resolvesOnce(accepted).rejects(Object.assign(new Error('We encountered an internal error'), { name: 'InternalException' }));

  const response = await sink().processBatch({ Records: records.slice(0, 3) });

  expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([seq(records[1]!), seq(records[2]!)]);
  expect(versionsPut()).toEqual([1, 2]);
});
