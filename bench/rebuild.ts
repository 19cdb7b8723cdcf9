/**
 * Figure 4: events per second replayed into a fresh read model by the rebuild command
 * (adapters/dynamodb/rebuild.ts rebuildImages: new table, replay, verify, switch,
 * catch-up replay; catch-up delay 0) over a raw copy of the same items: Scan pages,
 * BatchWriteItem (25 per request, 16 in flight) into a fresh table of the events
 * table's schema (no stream view on either side: bench/store.ts). Data: many images
 * with several events each. Interleaved: several rounds of one copy and one rebuild,
 * the order alternating each round.
 */
import { BatchWriteItemCommand, DeleteTableCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ensureTable } from '../adapters/dynamodb/admin';
import { DynamoEventStore } from '../adapters/dynamodb/eventStore';
import { ReadModelLocator } from '../adapters/dynamodb/readModel';
import { rebuildImages } from '../adapters/dynamodb/rebuild';
import { CONTROL_TABLE, EVENTS_TABLE, imagesTable, tableNames } from '../adapters/dynamodb/tables';
import { batchWriteEvents, imageStream } from './events';
import { forEachLimit, log, now, round, type FigureResult } from './lib';
import { withoutStream, type BenchDynamo } from './store';

const PREFIX = 'bench4';

function* manyImages(images: number, eventsPerImage: number) {
  for (let i = 1; i <= images; i++) yield* imageStream(i, 7400 + (i % 50), eventsPerImage);
}

export const runRebuild = async (db: BenchDynamo, options: { images?: number; eventsPerImage?: number; rounds?: number } = {}): Promise<FigureResult> => {
  const images = options.images ?? 500;
  const eventsPerImage = options.eventsPerImage ?? 10;
  const total = images * eventsPerImage;
  await db.tables(PREFIX, [EVENTS_TABLE, CONTROL_TABLE, imagesTable(1)]);
  const names = tableNames(PREFIX);
  const client = db.client();
  const doc = db.doc(client);
  await batchWriteEvents(client, names.events, manyImages(images, eventsPerImage), 4);
  log(`rebuild: wrote ${total} events of ${images} images`);

  // Baseline: raw Scan -> BatchWrite copy into a fresh table.
  let copies = 0;
  const copy = async (): Promise<{ items: number; ms: number }> => {
    const prefix = `bench4copy${++copies}`;
    await ensureTable(client, prefix, withoutStream(EVENTS_TABLE));
    const target = tableNames(prefix).events;
    const t0 = now();
    let items = 0;
    let start: Record<string, any> | undefined;
    do {
      const out = await client.send(new ScanCommand({ TableName: names.events, ConsistentRead: true, ExclusiveStartKey: start }));
      const page = out.Items ?? [];
      const batches: (typeof page)[] = [];
      for (let i = 0; i < page.length; i += 25) batches.push(page.slice(i, i + 25));
      await forEachLimit(batches, 16, async (b) => {
        let requests = b.map((Item) => ({ PutRequest: { Item } }));
        while (requests.length) {
          const res = await client.send(new BatchWriteItemCommand({ RequestItems: { [target]: requests } }));
          requests = (res.UnprocessedItems?.[target] ?? []) as typeof requests;
        }
      });
      items += page.length;
      start = out.LastEvaluatedKey;
    } while (start);
    return { items, ms: now() - t0 };
  };

  const rebuild = async () => {
    const locator = new ReadModelLocator(doc, names.control, PREFIX);
    const events = new DynamoEventStore(doc, names.events, names.control, locator);
    const t0 = now();
    const report = await rebuildImages({ client, doc, prefix: PREFIX, events, locator, catchUpDelayMs: 0 });
    return { report, ms: now() - t0 };
  };

  // Interleaved: several rounds, each one copy and one rebuild, the order alternating
  // (copy first, then rebuild first), so drift of the machine hits both alike.
  const rounds = options.rounds ?? 3;
  const perRound: { copyItemsPerSec: number; rebuildEventsPerSec: number; ratio: number }[] = [];
  const base = { items: 0, ms: 0 };
  const rb = { events: 0, ms: 0, to: '', rows: 0 };
  for (let r = 0; r < rounds; r++) {
    let c = { items: 0, ms: 0 };
    let b = { events: 0, ms: 0 };
    for (const which of r % 2 === 0 ? (['copy', 'rebuild'] as const) : (['rebuild', 'copy'] as const)) {
      if (which === 'copy') {
        c = await copy();
        if (c.items !== total) throw new Error(`copy saw ${c.items} of ${total}`);
        await client.send(new DeleteTableCommand({ TableName: tableNames(`bench4copy${copies}`).events })); // keep the database the same size
      } else {
        const out = await rebuild();
        if (out.report.events !== total) throw new Error(`rebuild saw ${out.report.events} of ${total}`);
        b = { events: out.report.events, ms: out.ms };
        rb.to = out.report.to;
        rb.rows = out.report.images;
      }
    }
    base.items += c.items;
    base.ms += c.ms;
    rb.events += b.events;
    rb.ms += b.ms;
    const copyRate = c.items / (c.ms / 1000);
    const rebuildRate = b.events / (b.ms / 1000);
    perRound.push({ copyItemsPerSec: round(copyRate, 0), rebuildEventsPerSec: round(rebuildRate, 0), ratio: round(rebuildRate / copyRate) });
    log(`rebuild: round ${r + 1}: raw copy ${round(copyRate, 0)} items/s, rebuildImages ${round(rebuildRate, 0)} events/s (${round(rebuildRate / copyRate)}x)`);
  }
  const baseRate = base.items / (base.ms / 1000);
  const rate = rb.events / (rb.ms / 1000);
  const ratio = rate / baseRate;
  return {
    id: 4,
    name: 'rebuild: events/s replayed into a fresh read model over a raw Scan+BatchWrite copy',
    measured: ratio,
    shown: `${round(ratio)}x`,
    target: '>= 0.50x',
    pass: ratio >= 0.5,
    details: {
      images,
      eventsPerImage,
      events: total,
      rounds,
      perRound,
      rebuild: { eventsPerSec: round(rate, 0), seconds: round(rb.ms / 1000, 2), lastTo: rb.to, rows: rb.rows },
      rawCopy: { itemsPerSec: round(baseRate, 0), seconds: round(base.ms / 1000, 2) },
      method: `${rounds} rounds, each one raw copy and one rebuild, order alternating; rates over the summed times. Rebuild timed end to end (create table, replay, verify, switch, catch-up replay) with catchUpDelayMs 0; the copy's target table is dropped after each round`,
    },
  };
};
