/**
 * [slow] Loading an aggregate costs the same for 10 events as for 100,000: the load
 * reads ONE item (the newest: it carries the state). ~1 minute on dynalite.
 * Skip with `npx jest --selectProjects int --testPathIgnorePatterns store-100k`.
 */
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoEventStore, countRequests, documentClient } from '../../adapters/dynamodb';
import { toEventItem } from '../../adapters/dynamodb/eventStore';
import { evolve, initialState, streamIdOf, type NewEvent, type StorageImageState } from '../../domain/storageImage';
import type { StoredEvent } from '../../application/storePorts';
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
  // 16 requests in flight): the same items the store's append writes, versions 1..100,000.
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
  // And a stream of 10 events, through the store.
  await appendStream(stores, SHORT_IMAGE, [created(SHORT_IMAGE, 7), diskReady(7), ...Array.from({ length: 8 }, (_, i) => edited(7, `n${i}`, at(i + 10)))]);
});

describe('[slow] load of a 100,000-event stream', () => {
  it('reads one item: one Query, one item returned and scanned, the same capacity as for 10 events', async () => {
    const { local, prefix } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client, { returnConsumedCapacity: true });
    const store = new DynamoEventStore(documentClient(client), `${prefix}-events`);

    const long = await store.load(streamIdOf(LONG_IMAGE));
    const longStats = counter.get('Query');
    expect(long.version).toBe(LONG);
    expect(long.state).toEqual(expectedHead);
    expect(counter.count()).toBe(1);
    expect(longStats).toMatchObject({ requests: 1, itemsReturned: 1, itemsScanned: 1 });

    counter.reset();
    const short = await store.load(streamIdOf(SHORT_IMAGE));
    const shortStats = counter.get('Query');
    expect(short.version).toBe(10);
    expect(shortStats).toMatchObject({ requests: 1, itemsReturned: 1, itemsScanned: 1 });
    expect(longStats.capacityUnits).toBe(shortStats.capacityUnits);
    // eslint-disable-next-line no-console
    console.log(`load: 100,000 events -> ${JSON.stringify(longStats)}; 10 events -> ${JSON.stringify(shortStats)}`);
  });

  // Its speed is measured by `npm run bench`; here, what makes it fast: every load, not just the
  // first, reads one item, whatever the stream's length.
  it('costs the same on every load: 20 loads of each stream, one Query and one item each', async () => {
    const { local, prefix } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client, { returnConsumedCapacity: true });
    const store = new DynamoEventStore(documentClient(client), `${prefix}-events`);
    for (const [image, version] of [
      [LONG_IMAGE, LONG],
      [SHORT_IMAGE, 10],
    ] as const) {
      counter.reset();
      for (let i = 0; i < 20; i++) expect((await store.load(streamIdOf(image))).version).toBe(version);
      expect(counter.count()).toBe(20);
      expect(counter.get('Query')).toMatchObject({ requests: 20, itemsReturned: 20, itemsScanned: 20 });
    }
  });

  it('appends on top of it at version 100,001, and refuses a second writer at the same version', async () => {
    const { stores } = dynamo();
    const { version, state } = await stores.events.load(streamIdOf(LONG_IMAGE));
    const stored = await stores.events.append(streamIdOf(LONG_IMAGE), version, edited(7, 'last'), evolve(state, edited(7, 'last')));
    expect(stored.version).toBe(LONG + 1);
    await expect(stores.events.append(streamIdOf(LONG_IMAGE), version, edited(7, 'twin'), state)).rejects.toThrow(/moved past version 100000/);
    expect((await stores.events.readStream(streamIdOf(LONG_IMAGE), LONG - 1)).map((e) => e.version)).toEqual([LONG - 1, LONG, LONG + 1]);
  });
});
