/**
 * Figure 1: event-store appends per second (DynamoEventStore.append, one event each,
 * 16 writers, each appending to its own stream) over raw conditional PutItems of the
 * same items (the same marshalled event item, `attribute_not_exists(streamId)`),
 * on a raw DynamoDBClient. Timed phases of equal length, interleaved A B B A.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoEventStore } from '../adapters/dynamodb/eventStore';
import { EVENTS_TABLE, tableNames } from '../adapters/dynamodb/tables';
import type { StoredEvent } from '../application/storePorts';
import { eventItem, imageStream } from './events';
import { log, now, round, sleep, type FigureResult } from './lib';
import type { BenchDynamo } from './store';

const PREFIX = 'bench1';
const CONCURRENCY = 16;

export const runAppend = async (db: BenchDynamo, options: { seconds?: number } = {}): Promise<FigureResult> => {
  const seconds = options.seconds ?? 3;
  await db.tables(PREFIX, [EVENTS_TABLE]);
  const table = tableNames(PREFIX).events;
  const rawClient = db.client();
  const store = new DynamoEventStore(db.doc(db.client()), table);
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
            await rawClient.send(new PutItemCommand({ TableName: table, Item, ConditionExpression: 'attribute_not_exists(streamId)' }));
          } else {
            const { streamId, version, stateAfter, ...event } = e;
            await store.append(streamId, version - 1, event as Parameters<DynamoEventStore['append']>[2], stateAfter);
          }
          appends++;
        }
      }),
    );
    return { appends, ms: now() - t0 };
  };

  await phase('raw'); // warm-up of both paths (short)
  await phase('store');
  const totals = { raw: { appends: 0, ms: 0 }, store: { appends: 0, ms: 0 } };
  for (const kind of ['raw', 'store', 'store', 'raw'] as const) {
    const p = await phase(kind);
    totals[kind].appends += p.appends;
    totals[kind].ms += p.ms;
    log(`append: ${kind} ${round(p.appends / (p.ms / 1000), 0)}/s`);
    await sleep(100);
  }
  const rawRate = totals.raw.appends / (totals.raw.ms / 1000);
  const storeRate = totals.store.appends / (totals.store.ms / 1000);
  const ratio = storeRate / rawRate;
  return {
    id: 1,
    name: 'append throughput: event store over raw conditional PutItem (16 writers)',
    measured: ratio,
    shown: `${round(ratio)}x`,
    target: '>= 0.90x',
    pass: ratio >= 0.9,
    details: {
      concurrency: CONCURRENCY,
      secondsPerPhase: seconds,
      order: 'raw, store, store, raw (after a warm-up of each)',
      store: { appendsPerSec: round(storeRate, 0), appends: totals.store.appends },
      raw: { putsPerSec: round(rawRate, 0), puts: totals.raw.appends },
      itemJsonBytes: round(bytes / Math.max(items, 1), 0),
    },
  };
};
