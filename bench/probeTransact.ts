/**
 * A probe (not a figure): how fast DynamoDB Local serves the three-item transaction of
 * figure 1, and what changes it. Variants: writers 1 or 16; with or without a
 * ClientRequestToken; each writer on its own stream or all on one head item; JVM flags
 * (BENCH_PROBE_JVM: extra -XX flags). Reports transactions/s, SDK retries and
 * cancellations. `npx tsx bench/probeTransact.ts`
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { TransactWriteItemsCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { ensureTables } from '../adapters/dynamodb/admin';
import { headKey } from '../adapters/dynamodb/eventStore';
import { toRow } from '../adapters/dynamodb/readModel';
import { CONTROL_TABLE, EVENTS_TABLE, imagesTable, tableNames } from '../adapters/dynamodb/tables';
import { toImageView } from '../application/views';
import { localClient, startDynamoServer } from '../local/dynamo';
import { batchWriteEvents, eventItem, imageStream } from './events';
import { readFileSync } from 'node:fs';
import { now, round } from './lib';

const m = (item: object) => marshall(item, { removeUndefinedValues: true, convertEmptyValues: false });

const main = async () => {
  const seconds = Number(process.env.BENCH_PROBE_SECONDS ?? 3);
  console.log(`load average ${loadavg().map((x) => round(x, 1)).join(' ')}`);
  const jvmArgs = (process.env.BENCH_PROBE_JVM ?? '').split(' ').filter(Boolean);
  const server = await startDynamoServer({ jvmArgs, ...(process.env.BENCH_PROBE_HEAP ? { heapMb: Number(process.env.BENCH_PROBE_HEAP) } : {}) });
  console.log(`DynamoDB Local pid ${server.pid}, extra JVM flags: ${jvmArgs.join(' ') || 'none'}`);
  const client = localClient(server.endpoint);
  const admin = localClient(server.endpoint);
  await ensureTables(admin, 'probe', [EVENTS_TABLE, CONTROL_TABLE, imagesTable(1)]);
  const fill = Number(process.env.BENCH_PROBE_FILL ?? 0);
  const jvmRss = () => Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1]) / 1024);
  if (fill) {
    // As figure 3 does before figure 1: a long stream in a table with a stream view.
    const withStream = process.env.BENCH_PROBE_FILL_STREAM !== '0';
    await ensureTables(admin, 'fill', [withStream ? EVENTS_TABLE : { ...EVENTS_TABLE, stream: undefined }]);
    const t = now();
    await batchWriteEvents(admin, tableNames('fill').events, imageStream(1, 7301, fill), 4);
    console.log(`filled ${fill} events (${withStream ? 'with' : 'without'} a stream view) in ${round((now() - t) / 1000, 1)} s, JVM RSS ${jvmRss()} MB`);
  }
  const names = tableNames('probe');
  let nextImage = 100_000;
  const run = async (label: string, o: { writers: number; token: boolean; rv?: boolean; single?: boolean; put?: boolean }) => {
    let done = 0;
    let retries = 0;
    let cancelled = 0;
    const t0 = now();
    const deadline = t0 + seconds * 1000;
    await Promise.all(
      Array.from({ length: o.writers }, async () => {
        const stream = imageStream(nextImage++, 7201, 1_000_000);
        for (let r = stream.next(); !r.done && now() < deadline; r = stream.next()) {
          const e = r.value;
          try {
            if (o.put) {
              const out = await client.send(new PutItemCommand({ TableName: names.events, Item: eventItem(e) }));
              retries += (out.$metadata.attempts ?? 1) - 1;
            } else {
              const pk = o.single ? 'head#hot' : headKey(e.streamId);
              const out = await client.send(
                new TransactWriteItemsCommand({
                  TransactItems: [
                    { Put: { TableName: names.events, Item: eventItem(e), ConditionExpression: 'attribute_not_exists(streamId)' } },
                    o.single
                      ? { Update: { TableName: names.control, Key: m({ pk }), UpdateExpression: 'ADD n :one', ExpressionAttributeValues: m({ ':one': 1 }), ...(o.rv ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}) } }
                      : { Put: { TableName: names.control, Item: m({ pk, version: e.version, state: e.stateAfter, time: e.time }), ...(e.version === 1 ? { ConditionExpression: 'attribute_not_exists(pk)' } : { ConditionExpression: 'version = :x', ExpressionAttributeValues: m({ ':x': e.version - 1 }) }), ...(o.rv ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}) } },
                    { Put: { TableName: names.imagesV1, Item: m(toRow(toImageView(e.stateAfter, e.version)!)) } },
                  ],
                  ...(o.token ? { ClientRequestToken: randomUUID() } : {}),
                }),
              );
              retries += (out.$metadata.attempts ?? 1) - 1;
            }
            done++;
          } catch (err) {
            cancelled++;
            retries += ((err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) - 1;
          }
        }
      }),
    );
    const ms = now() - t0;
    console.log(`${label.padEnd(44)} ${String(round(done / (ms / 1000), 0)).padStart(5)}/s  retries ${retries}  failed ${cancelled}  JVM RSS ${jvmRss()} MB  load ${round(loadavg()[0]!, 1)}`);
  };
  const rounds = Number(process.env.BENCH_PROBE_ROUNDS ?? 2);
  for (let i = 0; i < rounds; i++) {
    await run('PutItem, 1 writer', { writers: 1, token: false, put: true });
    await run('tx 3 items, 1 writer, token', { writers: 1, token: true });
    await run('tx 3 items, 1 writer, no token', { writers: 1, token: false });
    await run('tx 3 items, 1 writer, token, rv ALL_OLD', { writers: 1, token: true, rv: true });
    await run('tx 3 items, 4 writers, token', { writers: 4, token: true });
    await run('tx 3 items, 16 writers, token', { writers: 16, token: true });
    await run('tx 3 items, 16 writers, no token', { writers: 16, token: false });
    await run('tx 3 items, 16 writers, one hot item', { writers: 16, token: true, single: true });
  }
  client.destroy();
  admin.destroy();
  await server.stop();
};
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
