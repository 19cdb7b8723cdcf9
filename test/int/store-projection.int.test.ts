/**
 * The projector, the read model and the rebuild, against DynamoDB Local, the projector
 * fed from the events table's real stream (local/streamPoller.ts): messy deliveries of
 * those stream records give the same read model as one clean pass, and a rebuild from
 * the log gives the live one.
 */
import fc from 'fast-check';
import { ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import {
  DynamoImageReadModel,
  InvalidPageTokenError,
  Projector,
  ReadModelLocator,
  imagesTable,
  checkQuotaLedgers,
  quotaFromLog,
  rebuildImages,
  tableName,
} from '../../adapters/dynamodb';
import { ensureTable as ensureTableForTest } from '../../adapters/dynamodb/admin';
import type { StoredEvent } from '../../application/storePorts';
import type { NewEvent } from '../../domain/storageImage';
import { appendStream, at, attached, created, detached, diskReady, edited, revoked, useTestDynamo } from '../support/dynamo';

jest.setTimeout(60_000);
const dynamo = useTestDynamo({ readModelTtlMs: 200 });

/** 15 images of 3 users with every kind of history. */
const histories = (): Array<[number, NewEvent[]]> =>
  Array.from({ length: 15 }, (_, i) => {
    const imageId = i + 1;
    const userId = 1 + (i % 3);
    const events: NewEvent[] = [created(imageId, userId, 10 * imageId, at(i))];
    if (i % 5 !== 4) events.push(diskReady(userId, at(20 + i)));
    if (i % 5 !== 4 && i % 2 === 0) events.push(edited(userId, `renamed ${imageId}`, at(40 + i)));
    if (i % 5 !== 4 && i % 3 === 0) events.push(attached(userId, 700 + userId, `vd${String.fromCharCode(98 + i)}`, at(60 + i)));
    if (i % 5 !== 4 && i % 3 === 0 && i % 2 === 1) events.push(detached(700 + userId, `vd${String.fromCharCode(98 + i)}`, at(80 + i)));
    if (i % 5 !== 4 && (i % 3 !== 0 || i % 2 === 1) && i % 4 === 1) events.push(revoked(userId, at(100 + i)));
    return [imageId, events];
  });

const scanTable = async (table: string): Promise<Record<string, unknown>[]> => {
  const { stores } = dynamo();
  const out = await stores.doc.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
  return (out.Items ?? []).sort((a, b) => (a.id as number) - (b.id as number));
};

let log: StoredEvent[] = [];
let spareGeneration = 100;
const spareTable = async (): Promise<string> => {
  const { local, prefix } = dynamo();
  const def = imagesTable(spareGeneration++);
  await ensureTableForTest(local.client, prefix, def);
  return tableName(prefix, def);
};

const seenByHook: string[] = [];
let drains: unknown[] = [];
let cleanTable: string;
/** The stream records of the log, as the poller delivered them. */
const records: DynamoDBRecord[] = [];

// The log, and the live read model from one clean pass of the stream.
beforeAll(async () => {
  const { stores, poller } = dynamo();
  for (const [imageId, events] of histories()) log.push(...(await appendStream(stores, imageId, events)));
  const projector = new Projector({ readModel: stores.readModel });
  projector.onStoredEvent(async (e) => {
    seenByHook.push(`${e.streamId}@${e.version}`);
  });
  const feed = poller(
    (event) => {
      records.push(...event.Records);
      return projector.processBatch(event);
    },
    { batchSize: 7 },
  );
  drains = [await feed.drain(), await feed.drain()];
  cleanTable = await stores.locator.imagesTable();
});

describe('projection', () => {
  it('a clean pass through the stream builds the live read model (and runs the hooks once per event)', async () => {
    const { stores } = dynamo();
    expect(drains).toEqual([
      { delivered: log.length, failed: 0, deadLettered: 0 },
      { delivered: 0, failed: 0, deadLettered: 0 },
    ]);
    expect(records.map((r) => r.dynamodb!.NewImage!.streamId!.S + '@' + r.dynamodb!.NewImage!.version!.N)).toEqual(log.map((e) => `${e.streamId}@${e.version}`));
    expect(seenByHook).toHaveLength(log.length);
    expect(new Set(seenByHook).size).toBe(log.length);
    expect(cleanTable).toBe(stores.names.imagesV1);
    const rows = await scanTable(cleanTable);
    expect(rows).toHaveLength(15);
    expect(rows.find((r) => r.id === 1)).toMatchObject({ userId: 1, state: 'ok', vmId: 701, diskDev: 'vdb', name: 'renamed 1', version: 4 });
    expect(rows.find((r) => r.id === 4)).toMatchObject({ userId: 1, state: 'ok', name: 'disk 4', version: 4 });
    expect(rows.find((r) => r.id === 4)).not.toHaveProperty('vmId');
    expect(rows.find((r) => r.id === 2)).toMatchObject({ state: 'locked', version: 3 });
    expect(rows.find((r) => r.id === 5)).toMatchObject({ state: 'adding', progress: 0, version: 1 });
    expect(rows.find((r) => r.id === 5)).not.toHaveProperty('vmId');
  });

  it('duplicated, reordered and replayed batches give the same read model as the clean pass', async () => {
    const clean = await scanTable(cleanTable);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(records.length - 1), { maxLength: records.length * 2 }),
        fc.array(fc.nat(), { minLength: records.length * 3, maxLength: records.length * 3 }),
        fc.integer({ min: 1, max: 20 }),
        async (duplicates, sortKeys, batchSize) => {
          const { stores } = dynamo();
          const table = await spareTable();
          const projector = new Projector({ readModel: new DynamoImageReadModel(stores.doc, table) });
          // Every record at least once, plus random duplicates, in a random order, in random batch sizes.
          const all: DynamoDBRecord[] = [...records, ...duplicates.map((i) => records[i]!)];
          const shuffled = all.map((r, i) => ({ r, k: sortKeys[i]! })).sort((a, b) => a.k - b.k).map((x) => x.r);
          for (let i = 0; i < shuffled.length; i += batchSize) {
            expect((await projector.processBatch({ Records: shuffled.slice(i, i + batchSize) })).batchItemFailures).toEqual([]);
          }
          // And a full replay on top.
          for (let i = 0; i < records.length; i += 25) await projector.processBatch({ Records: records.slice(i, i + 25) });
          expect(await scanTable(table)).toEqual(clean);
        },
      ),
      { numRuns: 5 },
    );
  });

  it('reports a failing record per record (partial batch response), and the poller retries from it on the next pass', async () => {
    const { stores, poller } = dynamo();
    const table = await spareTable();
    let failImage3 = true;
    const projector = new Projector({ readModel: new DynamoImageReadModel(stores.doc, table) });
    projector.onStoredEvent(async (e) => {
      if (failImage3 && e.streamId === 'image-3') throw new Error('reaction failed');
    });
    const first10 = records.slice(0, 10);
    const response = await projector.processBatch({ Records: first10 });
    const failed = first10.filter((r) => r.dynamodb!.NewImage!.streamId!.S === 'image-3').map((r) => r.dynamodb!.SequenceNumber);
    expect(failed.length).toBeGreaterThan(0);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(failed);

    const feed = poller((event) => projector.processBatch(event));
    const beforeImage3 = log.findIndex((e) => e.streamId === 'image-3');
    // One batch of the whole log: acknowledged up to the first event of image-3, the rest comes again.
    expect(await feed.drain()).toEqual({ delivered: beforeImage3, failed: log.length - beforeImage3, deadLettered: 0 });
    failImage3 = false;
    expect(await feed.drain()).toEqual({ delivered: log.length - beforeImage3, failed: 0, deadLettered: 0 });
    expect(await scanTable(table)).toEqual(await scanTable(cleanTable));
  });
});

describe('read model queries', () => {
  it('lists a user’s images with paging, without revoked ones unless asked; tokens are checked', async () => {
    const { stores } = dynamo();
    const rm = stores.readModel;
    const all = (await rm.listByOwner(2, { limit: 100, includeRevoked: true })).items;
    const live = all.filter((v) => v.state !== 'locked');
    expect(all.length).toBe(5);
    expect(live.length).toBeLessThan(all.length);
    const paged: number[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await rm.listByOwner(2, { limit: 2, nextToken: token });
      expect(page.items.length).toBeLessThanOrEqual(2);
      paged.push(...page.items.map((v) => v.id));
      token = page.nextToken;
      pages++;
    } while (token);
    expect(paged).toEqual(live.map((v) => v.id));
    expect(pages).toBeGreaterThanOrEqual(2);
    const first = await rm.listByOwner(2, { limit: 1 });
    await expect(rm.listByOwner(3, { limit: 1, nextToken: first.nextToken })).rejects.toBeInstanceOf(InvalidPageTokenError);
    await expect(rm.listByOwner(2, { limit: 1, nextToken: 'garbage' })).rejects.toBeInstanceOf(InvalidPageTokenError);
    expect(all[0]).toEqual({
      id: 2,
      userId: 2,
      name: 'disk 2',
      description: '',
      diskController: 'virtio',
      filesystem: 'raw',
      sizeMb: 20,
      state: 'locked',
      progress: 100,
      creationDate: at(1),
      vmId: null,
      diskDev: null,
      version: 3,
      attachedAt: null,
    });
  });

  it('lists all images (admin) with paging, and the images of a VM', async () => {
    const { stores } = dynamo();
    const rm = stores.readModel;
    const ids: number[] = [];
    let token: string | undefined;
    do {
      const page = await rm.listAll({ limit: 4, nextToken: token, includeRevoked: true });
      ids.push(...page.items.map((v) => v.id));
      token = page.nextToken;
    } while (token);
    expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    const live = (await rm.listAll({ limit: 100 })).items;
    expect(live.every((v) => v.state !== 'locked')).toBe(true);
    expect((await rm.listByVm(701)).map((v) => [v.id, v.diskDev])).toEqual([[1, 'vdb'], [7, 'vdh'], [13, 'vdn']]);
    expect(await rm.listByVm(999)).toEqual([]);
  });

  it('read-your-writes: a committed event shows in the next list before any projection; its projection is then stale', async () => {
    const { stores } = dynamo();
    const [e] = await appendStream(stores, 77, [created(77, 9)]);
    expect((await stores.readModel.listByOwner(9, { limit: 10 })).items.map((v) => [v.id, v.version])).toEqual([[77, 1]]);
    expect(await stores.readModel.apply(e!)).toBe('stale'); // the commit wrote the row already
    log.push(e!);
  });

  it('the projector ignores stale versions: an older event never overwrites a newer row', async () => {
    const { stores, poller } = dynamo();
    const events = await appendStream(stores, 79, [created(79, 9), diskReady(9), edited(9, 'newest')]);
    const projector = new Projector({ readModel: stores.readModel });
    // The stream's own records of the two older events, delivered twice after the newest was written.
    const seen: DynamoDBRecord[] = [];
    await poller(async (event) => void seen.push(...event.Records)).drain();
    const older = seen.filter((r) => r.dynamodb?.Keys?.streamId?.S === 'image-79' && Number(r.dynamodb.Keys.version?.N) <= 2);
    expect(older).toHaveLength(2);
    expect((await projector.processBatch({ Records: [...older, ...older] })).batchItemFailures).toEqual([]);
    expect((await stores.readModel.listByOwner(9, { limit: 10 })).items.find((v) => v.id === 79)).toMatchObject({ name: 'newest', version: 3 });
    log.push(...events);
  });
});

describe('rebuild from the log', () => {
  it('builds a read model equal to the live one, switches reads to it, and projections follow', async () => {
    const { stores, local, prefix, poller } = dynamo();
    const live = await scanTable(stores.names.imagesV1);
    const messages: string[] = [];
    const report = await rebuildImages({
      client: local.client,
      doc: stores.doc,
      prefix,
      events: stores.events,
      locator: stores.locator,
      catchUpDelayMs: 10,
      log: (m) => messages.push(m),
    });
    expect(report).toMatchObject({ from: stores.names.imagesV1, events: log.length, images: 17 });
    expect(report.to).toMatch(/-images-v(\d+)$/);
    expect(await scanTable(report.to)).toEqual(live);
    expect(await stores.locator.imagesTable()).toBe(report.to);
    // Another process's locator follows within its TTL.
    const other = new ReadModelLocator(stores.doc, stores.names.control, prefix, 0);
    expect(await other.imagesTable()).toBe(report.to);
    // New events now land in the new table; the old one is kept as it was.
    const projector = new Projector({ readModel: stores.readModel });
    const feed = poller((event) => projector.processBatch(event));
    await appendStream(stores, 78, [created(78, 9)]);
    await feed.drain();
    expect((await stores.readModel.listByOwner(9, { limit: 10 })).items.map((v) => v.id)).toEqual([77, 78, 79]);
    expect(await scanTable(stores.names.imagesV1)).toEqual(live);
    // A second rebuild goes on from the current table.
    const again = await rebuildImages({ client: local.client, doc: stores.doc, prefix, events: stores.events, locator: stores.locator, catchUpDelayMs: 10 });
    expect(again.from).toBe(report.to);
    expect(await scanTable(again.to)).toEqual(await scanTable(report.to));
  });

  it('the quota ledgers from the log: the sizes of the images not revoked, per user; the audit finds a tampered ledger', async () => {
    const { stores } = dynamo();
    const ledgers = await quotaFromLog(stores.events);
    const expected = new Map<number, Record<number, number>>();
    for (const [imageId, events] of histories()) {
      const userId = 1 + ((imageId - 1) % 3);
      const images = expected.get(userId) ?? {};
      if (!events.some((e) => e.type === 'StorageImageRevoked')) images[imageId] = 10 * imageId;
      expected.set(userId, images);
    }
    expected.set(9, { 77: 100, 78: 100, 79: 100 });
    expect(ledgers).toEqual(expected);
    // Written in the same transactions as the events: the ledgers agree with the log.
    expect(await checkQuotaLedgers(stores.events, stores.quota)).toEqual([]);
    // An entry the log does not explain is reported, and the audit writes nothing.
    await stores.doc.send(
      new UpdateCommand({ TableName: stores.names.control, Key: { pk: 'quota#1' }, UpdateExpression: 'SET #i = :s, usedMb = usedMb + :s', ExpressionAttributeNames: { '#i': 'img#999' }, ExpressionAttributeValues: { ':s': 5 } }),
    );
    const logMb = Object.values(expected.get(1)!).reduce((a, b) => a + b, 0);
    expect(await checkQuotaLedgers(stores.events, stores.quota)).toEqual([{ userId: 1, ledgerMb: logMb + 5, logMb }]);
    expect(await checkQuotaLedgers(stores.events, stores.quota)).toEqual([{ userId: 1, ledgerMb: logMb + 5, logMb }]);
  });
});
