/**
 * [slow] Loading an aggregate costs the same for 10 events as for 100,000: the load is
 * ONE GetItem of the stream head (version + state), whatever the log holds. Counted in
 * requests and items (requestCounter.ts), not timed.
 * Skip with `npx jest --selectProjects int --testPathIgnorePatterns store-100k`.
 */
import { BatchWriteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoEventStore, countRequests, documentClient, fixedImagesTable } from '../../adapters/dynamodb';
import { headKey, toEventItem } from '../../adapters/dynamodb/eventStore';
import { ConcurrencyError, type StoredEvent } from '../../application/storePorts';
import { evolve, initialState, streamIdOf, type NewEvent, type StorageImageState } from '../../domain/storageImage';
import { appendStream, at, created, diskReady, edited, useTestDynamo } from '../support/dynamo';

jest.setTimeout(300_000);
const dynamo = useTestDynamo();

const LONG = 100_000;
const LONG_IMAGE = 1;
const SHORT_IMAGE = 2;

let expectedHead: StorageImageState;

beforeAll(async () => {
  const { stores } = dynamo();
  // 100,000 events of one stream, written directly with BatchWriteItem (25 per request,
  // 16 requests in flight): the same items the store's commit writes, versions 1..100,000.
  let state = initialState();
  const items: ReturnType<typeof toEventItem>[] = [];
  for (let version = 1; version <= LONG; version++) {
    const event: NewEvent = version === 1 ? created(LONG_IMAGE, 7) : version === 2 ? diskReady(7) : edited(7, `name ${version}`, at(version));
    state = evolve(state, event);
    items.push(toEventItem({ ...event, streamId: streamIdOf(LONG_IMAGE), version, stateAfter: state } as StoredEvent));
  }
  expectedHead = state;
  let next = 0;
  const writer = async () => {
    while (next < items.length) {
      let batch = items.slice(next, next + 25).map((Item) => ({ PutRequest: { Item } }));
      next += 25;
      while (batch.length > 0) {
        const out = await stores.doc.send(new BatchWriteCommand({ RequestItems: { [stores.names.events]: batch } }));
        batch = (out.UnprocessedItems?.[stores.names.events] ?? []) as typeof batch;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, writer));
  // Its head, as the store's last commit would have left it.
  await stores.doc.send(new PutCommand({ TableName: stores.names.control, Item: { pk: headKey(streamIdOf(LONG_IMAGE)), version: LONG, state, time: at(LONG) } }));
  // And a stream of 10 events, through the store.
  await appendStream(stores, SHORT_IMAGE, [created(SHORT_IMAGE, 7), diskReady(7), ...Array.from({ length: 8 }, (_, i) => edited(7, `n${i}`, at(i + 10)))]);
});

describe('[slow] load of a 100,000-event stream', () => {
  it('is one GetItem of one item, as for a stream of 10 events, with the same capacity', async () => {
    const { local, stores } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client, { returnConsumedCapacity: true });
    const store = new DynamoEventStore(documentClient(client), stores.names.events, stores.names.control, fixedImagesTable(stores.names.imagesV1));

    const long = await store.load(streamIdOf(LONG_IMAGE));
    const longStats = counter.get('GetItem');
    expect(long.version).toBe(LONG);
    expect(long.state).toEqual(expectedHead);
    expect(counter.snapshot()).toEqual({ GetItem: expect.objectContaining({ requests: 1 }) });

    counter.reset();
    const short = await store.load(streamIdOf(SHORT_IMAGE));
    const shortStats = counter.get('GetItem');
    expect(short.version).toBe(10);
    expect(counter.snapshot()).toEqual({ GetItem: expect.objectContaining({ requests: 1 }) });
    expect(longStats.capacityUnits).toBe(shortStats.capacityUnits);
    // eslint-disable-next-line no-console
    console.log(`load: 100,000 events -> ${JSON.stringify(longStats)}; 10 events -> ${JSON.stringify(shortStats)}`);
  });

  it('commits on top of it at version 100,001 in one request, and refuses a second writer at the same version', async () => {
    const { stores, local } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client);
    const store = new DynamoEventStore(documentClient(client), stores.names.events, stores.names.control, fixedImagesTable(stores.names.imagesV1));
    const { version, state } = await store.load(streamIdOf(LONG_IMAGE));
    const last = edited(7, 'last');
    const [stored] = await store.commit([{ streamId: streamIdOf(LONG_IMAGE), expectedVersion: version, event: last, stateAfter: evolve(state, last) }]);
    expect(stored!.version).toBe(LONG + 1);
    expect(counter.count()).toBe(2); // GetItem + TransactWriteItems
    const twin = edited(7, 'twin');
    await expect(store.commit([{ streamId: streamIdOf(LONG_IMAGE), expectedVersion: version, event: twin, stateAfter: evolve(state, twin) }])).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
    expect((await store.readStream(streamIdOf(LONG_IMAGE), { fromVersion: LONG - 1 })).events.map((e) => e.version)).toEqual([LONG - 1, LONG, LONG + 1]);
    expect((await store.load(streamIdOf(LONG_IMAGE))).version).toBe(LONG + 1);
  });

  it('the history reads in pages: a page of 1000 from the middle, the next page where it stopped', async () => {
    const { stores } = dynamo();
    const page = await stores.events.readStream(streamIdOf(LONG_IMAGE), { fromVersion: 50_001, limit: 1000 });
    expect(page.events.map((e) => e.version)).toEqual(Array.from({ length: 1000 }, (_, i) => 50_001 + i));
    expect(page.nextVersion).toBe(51_001);
  });
});
