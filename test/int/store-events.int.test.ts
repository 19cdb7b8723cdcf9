/** The event store, the id allocator and the idempotency records, against a real dynalite server. */
import { makeIdempotent, IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import type { Context } from 'aws-lambda';
import { ConcurrencyError } from '../../application/storePorts';
import { DynamoEventStore, VersionGapError, countRequests, documentClient, idempotencyPersistence, DynamoIdAllocator } from '../../adapters/dynamodb';
import { streamIdOf } from '../../domain/storageImage';
import { appendStream, at, created, diskReady, edited, storedStream, useTestDynamo } from '../support/dynamo';

const dynamo = useTestDynamo();

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

  it('reads the full history in version order, from a version on', async () => {
    const { stores } = dynamo();
    const expected = storedStream(2, [created(2, 7), diskReady(7), edited(7, 'a', at(2)), edited(7, 'b', at(3))]);
    await appendStream(stores, 2, [created(2, 7), diskReady(7), edited(7, 'a', at(2)), edited(7, 'b', at(3))]);
    expect(await stores.events.readStream(streamIdOf(2))).toEqual(expected);
    expect((await stores.events.readStream(streamIdOf(2), 3)).map((e) => e.version)).toEqual([3, 4]);
  });

  it('32 concurrent appends at one version: exactly one wins, the others get ConcurrencyError, versions stay 1..n', async () => {
    const { stores, local, prefix } = dynamo();
    const [first] = storedStream(3, [created(3, 7)]);
    await stores.events.append(first!.streamId, 0, created(3, 7), first!.stateAfter);
    // 32 writers, each with its own store instance (as 32 Lambdas would be), all at version 1.
    const writers = Array.from({ length: 32 }, () => new DynamoEventStore(documentClient(local.client), `${prefix}-events`));
    const heads = await Promise.all(writers.map((w) => w.load(streamIdOf(3))));
    expect(heads.map((h) => h.version)).toEqual(Array(32).fill(1));
    const results = await Promise.allSettled(
      writers.map((w, i) => w.append(streamIdOf(3), heads[i]!.version, edited(7, `writer ${i}`), heads[i]!.state)),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(31);
    for (const r of lost) expect(r.reason).toBeInstanceOf(ConcurrencyError);
    // The losers reload and retry, one at a time (the application's bounded retry).
    for (const w of writers.slice(0, 5)) {
      const { version, state } = await w.load(streamIdOf(3));
      await w.append(streamIdOf(3), version, edited(7, `retry ${version}`), state);
    }
    expect((await stores.events.readStream(streamIdOf(3))).map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('never writes a version twice: an append at an old version is a ConcurrencyError', async () => {
    const { stores } = dynamo();
    const stored = await appendStream(stores, 4, [created(4, 7), diskReady(7)]);
    await expect(stores.events.append(streamIdOf(4), 1, edited(7, 'late'), stored[1]!.stateAfter)).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(stores.events.append(streamIdOf(4), 0, created(4, 7), stored[0]!.stateAfter)).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await stores.events.readStream(streamIdOf(4))).toHaveLength(2);
  });

  it('never skips a version: an append ahead of the stream is refused and writes nothing (castore #168)', async () => {
    const { local, prefix } = dynamo();
    const fresh = new DynamoEventStore(documentClient(local.client), `${prefix}-events`); // has seen nothing
    const [first] = storedStream(5, [created(5, 7)]);
    await fresh.append(first!.streamId, 0, created(5, 7), first!.stateAfter);
    await expect(fresh.append(streamIdOf(5), 3, edited(7, 'gap'), first!.stateAfter)).rejects.toBeInstanceOf(VersionGapError);
    const other = new DynamoEventStore(documentClient(local.client), `${prefix}-events`);
    await expect(other.append(streamIdOf(5), 2, edited(7, 'gap'), first!.stateAfter)).rejects.toBeInstanceOf(VersionGapError);
    await expect(other.append(streamIdOf(6), 1, edited(7, 'gap'), first!.stateAfter)).rejects.toBeInstanceOf(VersionGapError);
    expect((await fresh.readStream(streamIdOf(5))).map((e) => e.version)).toEqual([1]);
    expect(await fresh.readStream(streamIdOf(6))).toEqual([]);
  });

  it('load then append costs one Query and one PutItem; an append unseen by this instance one extra Query', async () => {
    const { local, prefix } = dynamo();
    const client = local.newClient();
    const counter = countRequests(client);
    const store = new DynamoEventStore(documentClient(client), `${prefix}-events`);
    const [first] = storedStream(7, [created(7, 7)]);
    await store.append(first!.streamId, 0, created(7, 7), first!.stateAfter);
    expect(counter.snapshot()).toEqual({ PutItem: expect.objectContaining({ requests: 1 }) });
    counter.reset();
    const { version, state } = await store.load(streamIdOf(7));
    await store.append(streamIdOf(7), version, diskReady(7), state);
    expect([counter.count('Query'), counter.count('PutItem'), counter.count()]).toEqual([1, 1, 2]);
    counter.reset();
    const other = new DynamoEventStore(documentClient(client), `${prefix}-events`);
    await other.append(streamIdOf(7), 2, edited(7, 'x'), state);
    expect([counter.count('Query'), counter.count('PutItem')]).toEqual([1, 1]);
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

describe('idempotency records in the control table (Powertools on dynalite)', () => {
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
