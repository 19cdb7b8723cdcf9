/**
 * The local stack in its own process, for the benchmark: `startLocalStack` (what
 * `npm start` runs) in memory with the simulated hypervisor. The DynamoDB Local JVM it
 * starts (a child of this process) is THE DynamoDB server of the whole benchmark run
 * (the parent reaches it over HTTP for figures 1, 3 and 4, on tables of their own).
 * Driven over IPC (process.send):
 *
 * - info: the API url, the DynamoDB Local endpoint and the JVM's pid, the table prefix;
 * - feeds {on}: start/stop the stream feeds (projector, disk files); drain: one pass;
 * - count:reset / count:snapshot: DynamoDB requests of the stack's client, by kind
 *   (adapters/dynamodb/requestCounter.ts) and by what they touch (claim writes,
 *   read-model writes), for figure 2;
 * - bare:start / bare:stop: the baseline of figure 5, a bare node:http server in this
 *   same process doing the same read as GET /storage-images/{id} (the stream head: one
 *   consistent GetItem on the control table);
 * - rss: this process's resident set now and its peak so far.
 */
import '../local/localDefaults';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { headKey } from '../adapters/dynamodb/eventStore';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { countRequests } from '../adapters/dynamodb/requestCounter';
import { tableNames } from '../adapters/dynamodb/tables';
import { startLocalStack } from '../local/stack';

type Message = { id: number; op: string; args?: Record<string, unknown> };

/** What each request touched, beyond its kind: claim writes and read-model writes. */
class TargetCounter {
  claimWrites = 0;
  readModelWrites = 0;
  /** Reads of the read-model pointer `readmodel#images`: cached 5 s per process, a cost per time, not per command. */
  pointerReads = 0;
  /** Items written: each item of a TransactWriteItems, and each single-item write. */
  itemsWritten = 0;
  /** Updates of the id counter (`counter#image`): one per block of ids, amortized over the block. */
  idBlockWrites = 0;
  byTarget: Record<string, number> = {};
  constructor(client: DynamoDBClient, prefix: string) {
    const names = tableNames(prefix);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const op = String(context.commandName ?? '').replace(/Command$/, '');
        const input = args.input as { TableName?: string; Key?: Record<string, { S?: string }>; Item?: Record<string, { S?: string }>; TransactItems?: unknown[] };
        if (op === 'TransactWriteItems') this.itemsWritten += input.TransactItems?.length ?? 0;
        if (op === 'PutItem' || op === 'UpdateItem' || op === 'DeleteItem') this.itemsWritten++;
        const table = input.TableName ?? '';
        let target = table.replace(`${prefix}-`, '');
        if (table === names.control) {
          const pk = input.Key?.pk?.S ?? input.Item?.pk?.S ?? '';
          const kind = pk.split('#')[0] ?? '';
          target = `control:${kind}`;
          const write = op === 'UpdateItem' || op === 'PutItem' || op === 'DeleteItem';
          if (write && (kind === 'vm' || kind === 'quota')) this.claimWrites++;
          if (op === 'GetItem' && kind === 'readmodel') this.pointerReads++;
          if (op === 'UpdateItem' && kind === 'counter') this.idBlockWrites++;
        } else if (/-images-v\d+$/.test(table) && (op === 'PutItem' || op === 'UpdateItem')) {
          this.readModelWrites++;
        }
        const key = `${op} ${target}`;
        this.byTarget[key] = (this.byTarget[key] ?? 0) + 1;
        return next(args);
      },
      // The build step runs after the document client marshalled the input: keys are {S: ...}.
      { step: 'build', name: 'benchTargetCounter', override: true },
    );
  }
  reset() {
    this.claimWrites = 0;
    this.readModelWrites = 0;
    this.pointerReads = 0;
    this.itemsWritten = 0;
    this.idBlockWrites = 0;
    this.byTarget = {};
  }
}

const main = async () => {
  const stack = await startLocalStack({ hypervisor: 'simulated', feedIntervalMs: 200, log: () => undefined });
  const client = stack.dynamo.client; // the client every adapter of the stack uses
  const counter = countRequests(client);
  const targets = new TargetCounter(client, stack.dynamo.prefix);
  const control = tableNames(stack.dynamo.prefix).control;

  let bare: Server | undefined;
  let feedsOn = true;

  const handlers: Record<string, (args: Record<string, unknown>) => Promise<unknown>> = {
    info: async () => ({ url: stack.url, endpoint: stack.dynamo.endpoint, dynamoPid: stack.dynamo.pid, prefix: stack.dynamo.prefix, hypervisor: stack.hypervisor.kind, pid: process.pid }),
    feeds: async ({ on }) => {
      if (on && !feedsOn) {
        stack.feed.start(200);
        stack.diskFeed.start(200);
      } else if (!on && feedsOn) {
        await stack.feed.stop();
        await stack.diskFeed.stop();
      }
      feedsOn = Boolean(on);
      return { feedsOn };
    },
    drain: async () => {
      await stack.drain();
      return {};
    },
    'count:reset': async () => {
      counter.reset();
      targets.reset();
      return {};
    },
    'count:snapshot': async () => ({
      byKind: Object.fromEntries(Object.entries(counter.snapshot()).map(([k, v]) => [k, v.requests])),
      total: counter.count(),
      claimWrites: targets.claimWrites,
      readModelWrites: targets.readModelWrites,
      pointerReads: targets.pointerReads,
      itemsWritten: targets.itemsWritten,
      idBlockWrites: targets.idBlockWrites,
      byTarget: targets.byTarget,
    }),
    'bare:start': async () => {
      // The same read as the API's GET: the stream head (GetItem of head#image-<id> on the
      // control table, consistent), answered as JSON. No auth, no middleware, no view mapping.
      const bareClient = stack.dynamo.newClient();
      bare = createServer((req, res) => {
        const m = /^\/storage-images\/(\d+)$/.exec(req.url ?? '');
        if (!m) {
          res.writeHead(404).end();
          return;
        }
        bareClient
          .send(new GetItemCommand({ TableName: control, Key: { pk: { S: headKey(`image-${m[1]}`) } }, ConsistentRead: true }))
          .then((out) => {
            if (!out.Item) return void res.writeHead(404).end();
            const head = unmarshall(out.Item);
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ ...(head.state as object), version: head.version }));
          })
          .catch(() => res.writeHead(500).end());
      });
      bare.keepAliveTimeout = 65_000;
      await new Promise<void>((ok) => bare!.listen(0, '127.0.0.1', ok));
      return { url: `http://127.0.0.1:${(bare.address() as AddressInfo).port}` };
    },
    'bare:stop': async () => {
      if (bare) {
        bare.closeAllConnections();
        await new Promise((ok) => bare!.close(ok));
      }
      bare = undefined;
      return {};
    },
    rss: async () => {
      const status = readFileSync('/proc/self/status', 'utf8');
      const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
      return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024, heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20 };
    },
    close: async () => {
      await handlers['bare:stop']!({});
      await stack.close();
      setTimeout(() => process.exit(0), 50);
      return {};
    },
  };

  process.on('message', (msg: Message) => {
    const handler = handlers[msg.op];
    if (!handler) return process.send!({ id: msg.id, error: `unknown op ${msg.op}` });
    handler(msg.args ?? {}).then(
      (result) => process.send!({ id: msg.id, result }),
      (error: unknown) => process.send!({ id: msg.id, error: error instanceof Error ? error.stack ?? error.message : String(error) }),
    );
  });
  process.send!({ id: 0, result: 'ready' });
};

main().catch((error) => {
  console.error('bench stack process failed:', error);
  process.exit(1);
});
