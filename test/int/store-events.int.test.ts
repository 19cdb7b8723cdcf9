/** The event store, the id allocator and the idempotency records, against DynamoDB Local. */
import { makeIdempotent, IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import type { Context } from 'aws-lambda';
import { ConcurrencyError, QuotaExceededError } from '../../application/storePorts';
import { DynamoEventStore, countRequests, documentClient, fixedImagesTable, idempotencyPersistence, DynamoIdAllocator } from '../../adapters/dynamodb';
import { headKey } from '../../adapters/dynamodb/eventStore';
import { evolve, streamIdOf, type NewEvent } from '../../domain/storageImage';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { appendStream, at, created, diskReady, edited, storedStream, useTestDynamo } from '../support/dynamo';

const dynamo = useTestDynamo();

/** A store of its own (as another Lambda would have), writing rows to the v1 images table. */
const storeOn = (client: DynamoDBClient): DynamoEventStore => {
  const { prefix } = dynamo();
  return new DynamoEventStore(documentClient(client), `${prefix}-events`, `${prefix}-control`, fixedImagesTable(`${prefix}-images-v1`));
};

const versionsOf = async (store: DynamoEventStore, streamId: string): Promise<number[]> => (await store.readStream(streamId)).events.map((e) => e.version);

describe('event store', () => {
  it('loads an unknown stream as version 0 in the initial state', async () => {
    expect(await dynamo().stores.events.load('image-999999')).toEqual({ version: 0, state: { status: 'none' } });
  });

  it('appends version after version and loads the head: version and state after the last event', async () => {
    const { stores } = dynamo();
    const stored = await appendStream(stores, 1, [created(1, 7), diskReady(7), edited(7, 'renamed')]);
    expect(stored.map((e) => e.version)).toEqual([1, 2, 3]);
    const head = await stores.events.load(streamIdOf(1));
    expect(head.version).toBe(3);
    expect(head.state).toEqual(stored[2]!.stateAfter);
    expect(head.state).toMatchObject({ status: 'ok', image: { name: 'renamed', userId: 7 } });
  });

  it('reads the full history in version order, and in pages from a version on', async () => {
    const { stores } = dynamo();
    const events = [created(2, 7), diskReady(7), edited(7, 'a', at(2)), edited(7, 'b', at(3)), edited(7, 'c', at(4))];
    const expected = storedStream(2, events);
    await appendStream(stores, 2, events);
    expect(await stores.events.readStream(streamIdOf(2))).toEqual({ events: expected });
    expect((await stores.events.readStream(streamIdOf(2), { fromVersion: 3 })).events.map((e) => e.version)).toEqual([3, 4, 5]);
    // Pages of 2: 1-2, 3-4, 5; each page says where the next starts, the last says nothing.
    const pages: number[][] = [];
    let from: number | undefined = 1;
    while (from !== undefined) {
      const page: { events: { version: number }[]; nextVersion?: number } = await stores.events.readStream(streamIdOf(2), { fromVersion: from, limit: 2 });
      pages.push(page.events.map((e) => e.version));
      from = page.nextVersion;
    }
    expect(pages.filter((p) => p.length > 0)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('32 concurrent commits at one version: exactly one wins, the others get ConcurrencyError, versions stay 1..n', async () => {
    const { stores, local } = dynamo();
    await appendStream(stores, 3, [created(3, 7)]);
    // 32 writers, each with its own store instance (as 32 Lambdas would be), all at version 1.
    const writers = Array.from({ length: 32 }, () => storeOn(local.client));
    const heads = await Promise.all(writers.map((w) => w.load(streamIdOf(3))));
    expect(heads.map((h) => h.version)).toEqual(Array(32).fill(1));
    const commitEdit = (w: DynamoEventStore, head: { version: number; state: ReturnType<typeof evolve> }, name: string) => {
      const event = edited(7, name);
      return w.commit([{ streamId: streamIdOf(3), expectedVersion: head.version, event, stateAfter: evolve(head.state, event) }]);
    };
    const results = await Promise.allSettled(writers.map((w, i) => commitEdit(w, heads[i]!, `writer ${i}`)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(31);
    for (const r of lost) expect(r.reason).toBeInstanceOf(ConcurrencyError);
    // The head holds the winner's state, not a loser's.
    const winner = (won[0] as PromiseFulfilledResult<{ data: unknown }[]>).value[0]!.data as { name: string };
    expect((await stores.events.load(streamIdOf(3))).state).toMatchObject({ image: { name: winner.name } });
    // The losers reload and retry, one at a time (the application's bounded retry).
    for (const w of writers.slice(0, 5)) await commitEdit(w, await w.load(streamIdOf(3)), 'retry');
    expect(await versionsOf(stores.events, streamIdOf(3))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await stores.events.load(streamIdOf(3))).version).toBe(7);
  });

  it('never writes a version twice: a commit at an old version is a ConcurrencyError and writes nothing', async () => {
    const { stores } = dynamo();
    const stored = await appendStream(stores, 4, [created(4, 7), diskReady(7)]);
    const late = edited(7, 'late');
    await expect(stores.events.commit([{ streamId: streamIdOf(4), expectedVersion: 1, event: late, stateAfter: evolve(stored[0]!.stateAfter, late) }])).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
    await expect(stores.events.commit([{ streamId: streamIdOf(4), expectedVersion: 0, event: created(4, 7), stateAfter: stored[0]!.stateAfter }])).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
    expect(await stores.events.readStream(streamIdOf(4))).toEqual({ events: stored });
    expect(await stores.events.load(streamIdOf(4))).toEqual({ version: 2, state: stored[1]!.stateAfter });
  });

  it('never skips a version: a commit ahead of the head is refused by the head condition alone (castore #168)', async () => {
    const { stores, local } = dynamo();
    const [first] = await appendStream(stores, 5, [created(5, 7)]);
    const gap = edited(7, 'gap');
    const ahead = (store: DynamoEventStore, streamId: string, expectedVersion: number) =>
      store.commit([{ streamId, expectedVersion, event: gap, stateAfter: evolve(first!.stateAfter, gap) }]);
    // Versions 3, 4 and (of a stream with no head) 2 are free keys in the log: only the head refuses them.
    const fresh = storeOn(local.client); // has seen nothing: no cache can help
    await expect(ahead(fresh, streamIdOf(5), 2)).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(ahead(fresh, streamIdOf(5), 3)).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(ahead(fresh, streamIdOf(6), 1)).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await versionsOf(fresh, streamIdOf(5))).toEqual([1]);
    expect(await fresh.readStream(streamIdOf(6))).toEqual({ events: [] });
    expect(await fresh.load(streamIdOf(6))).toEqual({ version: 0, state: { status: 'none' } });
    // Nor can the head be made to skip: it is at 1, as the log is.
    const head = await stores.doc.send(new GetCommand({ TableName: stores.names.control, Key: { pk: headKey(streamIdOf(5)) }, ConsistentRead: true }));
    expect(head.Item).toMatchObject({ version: 1 });
  });

  it('a lost race cancels the whole step: no event, no head move, no read-model row, no quota', async () => {
    const { stores } = dynamo();
    const [first] = await appendStream(stores, 8, [created(8, 17, 100)]);
    const usedBefore = await stores.quota.usedMb(17);
    // A second Created of image 8 (version 1 is taken), carrying a quota reserve for another image.
    const twin = created(8, 17, 300);
    await expect(
      stores.events.commit([{ streamId: streamIdOf(8), expectedVersion: 0, event: twin, stateAfter: evolve({ status: 'none' }, twin) }], {
        quota: { reserve: { userId: 17, imageId: 9, sizeMb: 300, limitMb: 10_000 } },
      }),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await stores.quota.usedMb(17)).toBe(usedBefore);
    expect((await stores.readModel.listByOwner(17, { limit: 10 })).items.map((v) => [v.id, v.sizeMb, v.version])).toEqual([[8, 100, first!.version]]);
    // A quota refusal cancels the event too.
    const next = edited(17, 'x');
    await expect(
      stores.events.commit([{ streamId: streamIdOf(8), expectedVersion: 1, event: next, stateAfter: evolve(first!.stateAfter, next) }], {
        quota: { reserve: { userId: 17, imageId: 10, sizeMb: 950, limitMb: 1000 } },
      }),
    ).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await versionsOf(stores.events, streamIdOf(8))).toEqual([1]);
  });

  it('load is one GetItem; a commit is one TransactWriteItems, whatever the stream length', async () => {
    const { local } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client);
    const store = storeOn(client);
    const [first] = storedStream(7, [created(7, 7)]);
    await store.commit([{ streamId: first!.streamId, expectedVersion: 0, event: created(7, 7), stateAfter: first!.stateAfter }]);
    expect(counter.snapshot()).toEqual({ TransactWriteItems: expect.objectContaining({ requests: 1 }) });
    for (let n = 0; n < 3; n++) {
      counter.reset();
      const { version, state } = await store.load(streamIdOf(7));
      const event: NewEvent = n === 0 ? diskReady(7) : edited(7, `x${n}`);
      await store.commit([{ streamId: streamIdOf(7), expectedVersion: version, event, stateAfter: evolve(state, event) }]);
      expect(counter.snapshot()).toEqual({
        GetItem: expect.objectContaining({ requests: 1 }),
        TransactWriteItems: expect.objectContaining({ requests: 1 }),
      });
    }
  });

  it('scanAll pages through every event of every stream', async () => {
    const { stores } = dynamo();
    const seen: string[] = [];
    let pages = 0;
    for await (const page of stores.events.scanAll({ pageSize: 3 })) {
      pages++;
      for (const e of page) seen.push(`${e.streamId}@${e.version}`);
    }
    expect(pages).toBeGreaterThan(3);
    expect(seen).toContain('image-3@7');
    expect(seen).toContain('image-1@3');
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe('id allocator', () => {
  it('hands out unique ids from 1, one counter update per block', async () => {
    const { local, prefix } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client);
    const a = new DynamoIdAllocator(documentClient(client), `${prefix}-control`, 20, 'counter#test-a');
    const b = new DynamoIdAllocator(documentClient(client), `${prefix}-control`, 20, 'counter#test-a');
    const ids = await Promise.all([...Array.from({ length: 30 }, () => a.nextImageId()), ...Array.from({ length: 30 }, () => b.nextImageId())]);
    expect(new Set(ids).size).toBe(60);
    expect(Math.min(...ids)).toBe(1);
    expect(Math.max(...ids)).toBeLessThanOrEqual(80);
    expect(counter.count('UpdateItem')).toBe(4); // 2 blocks each
  });

  it('with a block of 1, ids are dense: 1, 2, 3', async () => {
    const { local, prefix } = dynamo();
    const ids = new DynamoIdAllocator(documentClient(local.client), `${prefix}-control`, 1, 'counter#test-b');
    expect([await ids.nextImageId(), await ids.nextImageId(), await ids.nextImageId()]).toEqual([1, 2, 3]);
  });
});

describe('idempotency records in the control table (Powertools on DynamoDB Local)', () => {
  it('runs a handler once per key and replays the stored answer', async () => {
    const { local, prefix } = dynamo();
    let calls = 0;
    const config = new IdempotencyConfig({ eventKeyJmesPath: 'key', useLocalCache: false });
    config.registerLambdaContext({ getRemainingTimeInMillis: () => 30_000 } as Context);
    const handler = makeIdempotent(
      async (input: { key: string; n: number }) => {
        calls++;
        await new Promise((ok) => setTimeout(ok, 150)); // long enough for the twin to find it in progress
        return { result: input.n * 2, call: calls };
      },
      {
        persistenceStore: idempotencyPersistence(local.client, `${prefix}-control`),
        config,
      },
    );
    const first = await handler({ key: 'k1', n: 21 });
    const again = await handler({ key: 'k1', n: 21 });
    const concurrent = await Promise.allSettled([handler({ key: 'k2', n: 1 }), handler({ key: 'k2', n: 1 })]);
    expect(first).toEqual({ result: 42, call: 1 });
    expect(again).toEqual(first);
    expect(calls).toBe(2); // k1 once, k2 once
    const outcomes = concurrent.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as Error).name)).sort();
    expect(outcomes[0]).toBe('IdempotencyAlreadyInProgressError');
    expect(outcomes[1]).toBe('ok');
  });
});
