/**
 * Figure 3: decide-and-append latency (load the stream head, decide, conditional
 * commit: application/commandHandling.ts handleCommand: head GetItem + one
 * TransactWriteItems) on a stream of 100,000 events over the same on a stream of 10. The
 * long stream is written fast with BatchWriteItem of well-formed event items
 * (bench/events.ts); then rounds alternate between the two streams; medians.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { CONTROL_TABLE, EVENTS_TABLE, imagesTable, tableNames } from '../adapters/dynamodb/tables';
import { DynamoEventStore, headKey } from '../adapters/dynamodb/eventStore';
import { fixedImagesTable } from '../adapters/dynamodb/readModel';
import type { StoredEvent } from '../application/storePorts';
import { handleCommand } from '../application/commandHandling';
import { batchWriteEvents, imageStream } from './events';
import { log, median, now, percentile, round, type FigureResult } from './lib';
import { noReadModel, silentLogger, type BenchDynamo } from './store';

const PREFIX = 'bench3';
const LONG_ID = 1;
const SHORT_ID = 2;
const USER = 7301;

export interface LoadCostFill {
  longLength: number;
  shortLength: number;
  seconds: number;
}

/** Writes both streams (run it in the background while something untimed runs). */
export const fillLoadCost = async (db: BenchDynamo, longLength = 100_000, shortLength = 10): Promise<LoadCostFill> => {
  await db.tables(PREFIX, [EVENTS_TABLE, CONTROL_TABLE, imagesTable(1)]);
  const names = tableNames(PREFIX);
  const table = names.events;
  const client = db.client();
  const t0 = now();
  // Each stream's head, as the store's last commit leaves it (the load reads only that).
  const withHead = function* (events: Generator<StoredEvent>, last: { e?: StoredEvent }) {
    for (const e of events) yield (last.e = e);
  };
  const writeHead = (e: StoredEvent) =>
    client.send(new PutItemCommand({ TableName: names.control, Item: marshall({ pk: headKey(e.streamId), version: e.version, state: e.stateAfter, time: e.time }, { removeUndefinedValues: true }) }));
  const lastShort: { e?: StoredEvent } = {};
  const lastLong: { e?: StoredEvent } = {};
  await batchWriteEvents(client, table, withHead(imageStream(SHORT_ID, USER, shortLength), lastShort));
  const written = await batchWriteEvents(client, table, withHead(imageStream(LONG_ID, USER, longLength), lastLong), 4);
  if (written !== longLength) throw new Error(`wrote ${written} of ${longLength} events`);
  await writeHead(lastShort.e!);
  await writeHead(lastLong.e!);
  const seconds = (now() - t0) / 1000;
  log(`load cost: wrote ${longLength} + ${shortLength} events in ${round(seconds, 1)} s`);
  return { longLength, shortLength, seconds };
};

export const runLoadCost = async (db: BenchDynamo, fill: LoadCostFill, options: { rounds?: number } = {}): Promise<FigureResult> => {
  const rounds = options.rounds ?? 150;
  const table = tableNames(PREFIX).events;
  const names = tableNames(PREFIX);
  const events = new DynamoEventStore(db.doc(db.client()), table, names.control, fixedImagesTable(names.imagesV1));
  const deps = { events, readModel: noReadModel, logger: silentLogger };
  const ctx = { actor: { kind: 'user' as const, userId: USER }, now: new Date().toISOString() };
  const once = async (imageId: number, i: number) => {
    const t = now();
    const r = await handleCommand(deps, imageId, { type: 'EditStorageImage', name: `round-${i}` }, ctx);
    if (!r.appended) throw new Error('nothing appended');
    return now() - t;
  };
  // Warm-up (connections, JIT), not timed.
  for (let i = 0; i < 10; i++) {
    await once(LONG_ID, -i);
    await once(SHORT_ID, -i);
  }
  const long: number[] = [];
  const short: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first in each pair.
    if (i % 2) {
      long.push(await once(LONG_ID, i));
      short.push(await once(SHORT_ID, i));
    } else {
      short.push(await once(SHORT_ID, i));
      long.push(await once(LONG_ID, i));
    }
  }
  const ratio = median(long) / median(short);
  const head = await events.load(`image-${LONG_ID}`);
  return {
    id: 3,
    name: 'decide-and-append latency: stream of 100,000 events over a stream of 10',
    measured: ratio,
    shown: `${round(ratio)}x`,
    target: '<= 1.2x',
    pass: ratio <= 1.2,
    details: {
      rounds,
      longStream: { events: fill.longLength, versionAfter: head.version, medianMs: round(median(long), 2), p90Ms: round(percentile(long, 90), 2) },
      shortStream: { events: fill.shortLength, medianMs: round(median(short), 2), p90Ms: round(percentile(short, 90), 2) },
      fillSeconds: round(fill.seconds, 1),
      method: 'each round: handleCommand = GetItem of the stream head (consistent) + decide + one TransactWriteItems (event, head, row); alternating streams; medians',
    },
  };
};
