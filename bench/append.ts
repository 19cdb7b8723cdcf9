/**
 * Figure 1: event-store appends per second (DynamoEventStore.commit, one event each,
 * 16 writers, each appending to its own stream) over the same raw SDK request sent
 * directly: a TransactWriteItems of the same three items (event, head guarded by the
 * version, read-model row) with a ClientRequestToken, on a raw DynamoDBClient, on
 * DynamoDB Local. Short timed phases of equal length, interleaved A B B A, B A A B, ...
 * over several rounds; the figure is the median of the rounds' ratios (each round's
 * store total over its raw total), so a burst of load from the shared machine moves
 * one round, not the figure. The tables have no stream view (bench/store.ts).
 */
import { randomUUID } from 'node:crypto';
import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { DynamoEventStore, headKey } from '../adapters/dynamodb/eventStore';
import { fixedImagesTable, toRow } from '../adapters/dynamodb/readModel';
import { CONTROL_TABLE, EVENTS_TABLE, imagesTable, tableNames } from '../adapters/dynamodb/tables';
import { toImageView } from '../application/views';
import type { StoredEvent } from '../application/storePorts';
import { eventItem, imageStream } from './events';
import { log, median, now, round, sleep, type FigureResult } from './lib';
import type { BenchDynamo } from './store';

const PREFIX = 'bench1';
const CONCURRENCY = 16;

export const runAppend = async (db: BenchDynamo, options: { seconds?: number; rounds?: number } = {}): Promise<FigureResult> => {
  const seconds = options.seconds ?? 1.5;
  const rounds = options.rounds ?? 8;
  await db.tables(PREFIX, [EVENTS_TABLE, CONTROL_TABLE, imagesTable(1)]);
  const names = tableNames(PREFIX);
  const table = names.events;
  const rawClient = db.client();
  const store = new DynamoEventStore(db.doc(db.client()), table, names.control, fixedImagesTable(names.imagesV1));
  const m = (item: object) => marshall(item, { removeUndefinedValues: true, convertEmptyValues: false });
  let nextImage = 100_000; // same digit count for every stream: same item sizes
  let bytes = 0;
  let items = 0;

  const phase = async (kind: 'raw' | 'store'): Promise<{ appends: number; ms: number }> => {
    let appends = 0;
    const t0 = now();
    const deadline = t0 + seconds * 1000;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        const stream = imageStream(nextImage++, 7201, 1_000_000);
        for (let r = stream.next(); !r.done && now() < deadline; r = stream.next()) {
          const e: StoredEvent = r.value;
          if (kind === 'raw') {
            const Item = eventItem(e);
            if (items < 1000) {
              bytes += JSON.stringify(Item).length;
              items++;
            }
            const head = { pk: headKey(e.streamId), version: e.version, state: e.stateAfter, time: e.time };
            const guard =
              e.version === 1
                ? { ConditionExpression: 'attribute_not_exists(pk)' }
                : { ConditionExpression: 'version = :expected', ExpressionAttributeValues: m({ ':expected': e.version - 1 }) };
            await rawClient.send(
              new TransactWriteItemsCommand({
                TransactItems: [
                  { Put: { TableName: table, Item, ConditionExpression: 'attribute_not_exists(streamId)' } },
                  { Put: { TableName: names.control, Item: m(head), ...guard } },
                  { Put: { TableName: names.imagesV1, Item: m(toRow(toImageView(e.stateAfter, e.version)!)) } },
                ],
                ClientRequestToken: randomUUID(),
              }),
            );
          } else {
            const { streamId, version, stateAfter, ...event } = e;
            await store.commit([{ streamId, expectedVersion: version - 1, event: event as Parameters<DynamoEventStore['commit']>[0][number]['event'], stateAfter }]);
          }
          appends++;
        }
      }),
    );
    return { appends, ms: now() - t0 };
  };

  for (let w = 0; w < 2; w++) {
    await phase('raw'); // warm-up of both paths
    await phase('store');
  }
  const totals = { raw: { appends: 0, ms: 0 }, store: { appends: 0, ms: 0 } };
  const roundRatios: number[] = [];
  const order = (r: number) => (r % 2 === 0 ? (['raw', 'store', 'store', 'raw'] as const) : (['store', 'raw', 'raw', 'store'] as const));
  for (let r = 0; r < rounds; r++) {
    const t = { raw: { appends: 0, ms: 0 }, store: { appends: 0, ms: 0 } };
    for (const kind of order(r)) {
      const p = await phase(kind);
      t[kind].appends += p.appends;
      t[kind].ms += p.ms;
      totals[kind].appends += p.appends;
      totals[kind].ms += p.ms;
      await sleep(50);
    }
    const rr = t.raw.appends / (t.raw.ms / 1000);
    const sr = t.store.appends / (t.store.ms / 1000);
    roundRatios.push(sr / rr);
    log(`append: round ${r + 1}: raw ${round(rr, 0)}/s, store ${round(sr, 0)}/s (${round(sr / rr)}x)`);
  }
  const rawRate = totals.raw.appends / (totals.raw.ms / 1000);
  const storeRate = totals.store.appends / (totals.store.ms / 1000);
  const ratio = median(roundRatios);
  return {
    id: 1,
    name: 'append throughput: event store commit over the same raw TransactWriteItems (16 writers)',
    measured: ratio,
    shown: `${round(ratio)}x`,
    target: '>= 0.95x',
    pass: ratio >= 0.95,
    details: {
      concurrency: CONCURRENCY,
      secondsPerPhase: seconds,
      rounds,
      order: 'rounds alternate raw/store/store/raw and store/raw/raw/store, after two warm-ups of each',
      roundRatios: roundRatios.map((x) => round(x)),
      ratioOfTotals: round(storeRate / rawRate),
      figure: 'median of the rounds\' ratios',
      itemsPerTransaction: 3,
      store: { appendsPerSec: round(storeRate, 0), appends: totals.store.appends },
      raw: { transactionsPerSec: round(rawRate, 0), transactions: totals.raw.appends, items: 'event + head + row' },
      itemJsonBytes: round(bytes / Math.max(items, 1), 0),
    },
  };
};
