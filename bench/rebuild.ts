/**
 * Figure 4: events per second replayed into a fresh read model by the rebuild command
 * (adapters/dynamodb/rebuild.ts rebuildImages: new table, replay, verify, switch,
 * catch-up replay; catch-up delay 0) over a raw copy of the same items: Scan pages,
 * BatchWriteItem (25 per request, 16 in flight) into a fresh table of the events
 * table's schema. Data: many images with several events each.
 */
import { BatchWriteItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ensureTable } from '../adapters/dynamodb/admin';
import { DynamoEventStore } from '../adapters/dynamodb/eventStore';
import { ReadModelLocator } from '../adapters/dynamodb/readModel';
import { rebuildImages } from '../adapters/dynamodb/rebuild';
import { CONTROL_TABLE, EVENTS_TABLE, imagesTable, tableNames } from '../adapters/dynamodb/tables';
import { batchWriteEvents, imageStream } from './events';
import { forEachLimit, log, now, round, type FigureResult } from './lib';
import type { BenchDynamo } from './store';

const PREFIX = 'bench4';

function* manyImages(images: number, eventsPerImage: number) {
  for (let i = 1; i <= images; i++) yield* imageStream(i, 7400 + (i % 50), eventsPerImage);
}

export const runRebuild = async (db: BenchDynamo, options: { images?: number; eventsPerImage?: number } = {}): Promise<FigureResult> => {
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
    await ensureTable(client, prefix, EVENTS_TABLE);
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

  const base = await copy();
  log(`rebuild: raw copy ${round(base.items / (base.ms / 1000), 0)} items/s`);
  const rb = await rebuild();
  log(`rebuild: rebuildImages ${round(rb.report.events / (rb.ms / 1000), 0)} events/s`);
  if (rb.report.events !== total || base.items !== total) throw new Error(`rebuild saw ${rb.report.events}, copy ${base.items}, of ${total}`);
  const baseRate = base.items / (base.ms / 1000);
  const rate = rb.report.events / (rb.ms / 1000);
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
      rebuild: { eventsPerSec: round(rate, 0), seconds: round(rb.ms / 1000, 2), to: rb.report.to, rows: rb.report.images },
      rawCopy: { itemsPerSec: round(baseRate, 0), seconds: round(base.ms / 1000, 2) },
      method: 'rebuild timed end to end (create table, replay, verify, switch, catch-up replay) with catchUpDelayMs 0',
    },
  };
};
