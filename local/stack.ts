/**
 * The whole service on one machine (SPEC 4.5): DynamoDB Local with the real
 * tables, the local Run Command endpoint running the project's SSM documents against
 * libvirt (or the simulated virsh), the same handlers behind a local API Gateway,
 * a local EventBridge entry, and three stream pollers (local/streamPoller.ts, configured
 * as the CDK stack's event source mappings) reading the events table's DynamoDB Stream
 * into the projector, the disk-file reaction and the change notifications (kept in
 * memory, `GET /_local/published-events`). Used by `npm start` and by the
 * end-to-end tests.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Context, DynamoDBRecord } from 'aws-lambda';
import { Projector } from '../adapters/dynamodb/projector';
import { tableNames } from '../adapters/dynamodb/tables';
import { PATTERNS } from '../adapters/ssm/patterns';
import { diskFilesSink } from '../functions/diskFiles/reaction';
import { changeNotificationsSink } from '../functions/changeNotifications/sink';
import { CHANGE_EVENT_DETAIL_TYPE, CHANGE_EVENT_SOURCE, type ChangePublisher, type StorageImageChange } from '../application/changeNotifications';
import { handler as cc1Api } from '../functions/cc1Api/handler';
import { handler as restApi } from '../functions/restApi/handler';
import { DEFAULT_STORAGE, type StorageLocation } from '../application/storageChoice';
import { readConfig, RECONCILE_EVERY_MINUTES, type RuntimeConfig } from '../functions/shared/config';
import { reconcile } from '../application/reconciler';
import { buildContainer, useContainer, type Container } from '../functions/shared/container';
import { hostsOverSsm } from '../functions/shared/hostsOverSsm';
import { handleVmEvent } from '../functions/vmEvents/handler';
import { VM_EVENT_DETAIL_TYPE, VM_EVENT_SOURCE } from '../functions/vmEvents/vmStateEvent';
import { startLocalApi, type LocalApi, type LocalEventEntry } from './apiServer';
import { startLocalDynamo, type LocalDynamo } from './dynamo';
import { chooseHypervisor, LOCAL_LIBVIRT_URI, type HypervisorChoice } from './hypervisorChoice';
import { startLocalRunCommand, type LocalInstance, type LocalRunCommand } from './runCommand/server';
import { setDomainRunning } from './simulatedVirsh/simulatedHosts';
import { StreamPoller } from './streamPoller';

/** Written into the data dir while `npm start` runs: {url, dynamodbEndpoint, ssmEndpoint, prefix, storagePath, storageHostId, storages}. */
export const LOCAL_STACK_FILE = 'local-stack.json';

/** The storage host's managed-instance id in local mode (of the first storage when there are several). */
export const LOCAL_STORAGE_HOST_ID = 'mi-0000000000000000a';

/** The managed-instance id of the n-th local storage (0: LOCAL_STORAGE_HOST_ID); all run on this machine. */
export const localStorageHostId = (n: number): string => `mi-${(0xa + n).toString(16).padStart(17, '0')}`;

/** A storage of the local stack: its id, and its folder (default `<data dir>/storage-<id>`). */
export interface LocalStorageOption {
  id: string;
  path?: string;
}

export interface LocalStackOptions {
  /** Data folder kept across restarts; in memory (and a temp folder for files) when absent. */
  dataDir?: string;
  port?: number;
  /** `auto` | `libvirt` | `simulated` (default: CC1_HYPERVISOR, else auto). */
  hypervisor?: string;
  /** Stream polling interval (ms). */
  feedIntervalMs?: number;
  /**
   * Several storages (for tests), in configuration order, each with its own folder and
   * managed-instance id (localStorageHostId). Default: one, `default`, at `<data dir>/storage`.
   */
  storages?: LocalStorageOption[];
  /** The API functions' time limit (Lambda's timeout; default 30 s, as deployed). */
  lambdaTimeoutMs?: number;
  /** Settings over the environment's (quota, device maximum, timeouts). */
  config?: Partial<RuntimeConfig>;
  /**
   * How often the reconciler runs (ms), as its schedule does on AWS: default
   * CC1_RECONCILE_INTERVAL_MS, else every RECONCILE_EVERY_MINUTES; 0 never.
   */
  reconcileIntervalMs?: number;
  /** Work younger than this is in flight, not stale, for the scheduled reconciler (default its own, 2 min; tests shorten it). */
  reconcileSettleMs?: number;
  /** The database died and could not be restarted (npm start exits non-zero with this line). */
  onFatal?: (line: string) => void;
  log?: (line: string) => void;
}

export interface DeadLetter {
  time: string;
  reason: string;
  entry: LocalEventEntry;
}

/** A change notification as the bus would have received it (`GET /_local/published-events`). */
export interface PublishedEvent {
  source: typeof CHANGE_EVENT_SOURCE;
  detailType: typeof CHANGE_EVENT_DETAIL_TYPE;
  time: string;
  detail: StorageImageChange;
}

export interface LocalStack {
  url: string;
  hypervisor: HypervisorChoice;
  container: Container;
  dynamo: LocalDynamo;
  runCommand: LocalRunCommand;
  api: LocalApi;
  /** The projector's event source mapping (its stream dead letters: `feed.deadLetters`). */
  feed: StreamPoller;
  /** The disk-file reaction's event source mapping. */
  diskFeed: StreamPoller;
  /** The change notifications' event source mapping, and what it published (in memory). */
  changeFeed: StreamPoller;
  publishedEvents: PublishedEvent[];
  /** EventBridge deliveries that failed (the stream pollers keep their own). */
  deadLetters: DeadLetter[];
  simulatedStateFile: string;
  /** The folder of the first storage. */
  storagePath: string;
  /** Every storage, in configuration order. */
  storages: StorageLocation[];
  /** Delivers the events table's stream, up to now, to the projector and the disk-file reaction. */
  drain(): Promise<void>;
  /** Stops taking requests, lets those in flight finish for up to `drainMs` (default 0), then stops the pollers and the database. */
  close(options?: { drainMs?: number }): Promise<void>;
}

const HOST_ID = new RegExp(PATTERNS.managedInstanceId);

export const startLocalStack = async (options: LocalStackOptions = {}): Promise<LocalStack> => {
  const log = options.log ?? (() => undefined);
  const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
  const filesDir = dataDir ?? mkdtempSync(join(tmpdir(), 'cc1-local-'));
  const storages: StorageLocation[] = options.storages?.length
    ? options.storages.map((s, n) => ({ id: s.id, path: s.path ? resolve(s.path) : join(filesDir, `storage-${s.id}`), hostId: localStorageHostId(n) }))
    : [{ id: DEFAULT_STORAGE, path: join(filesDir, 'storage'), hostId: LOCAL_STORAGE_HOST_ID }];
  for (const storage of storages) mkdirSync(storage.path, { recursive: true });
  const storagePath = storages[0]!.path;
  const simulatedStateFile = join(filesDir, 'simulated-virsh.json');

  const hypervisor = await chooseHypervisor(options.hypervisor ?? process.env.CC1_HYPERVISOR);
  const hostInstance = (): LocalInstance =>
    hypervisor.kind === 'libvirt' ? { virsh: 'libvirt', libvirtUri: LOCAL_LIBVIRT_URI } : { virsh: 'simulated', simulatedStateFile };
  // Hypervisor hosts are learnt from VM events: any well-formed instance id runs here.
  const known: Record<string, LocalInstance> = Object.fromEntries(
    storages.map((s) => [s.hostId, { storagePath: s.path, virsh: hypervisor.kind === 'libvirt' ? 'libvirt' : 'simulated', simulatedStateFile }]),
  );
  // Every well-formed managed-instance id is this machine (also ids learnt before a restart).
  const instances = new Proxy(known, {
    get: (target, id) => (typeof id === 'string' && !(id in target) && HOST_ID.test(id) ? hostInstance() : Reflect.get(target, id)),
  });

  // In memory, the tables get a prefix of their own: a shared test server may hold other stacks' tables.
  const supervision = { log: (line: string) => log(line), ...(options.onFatal ? { onFatal: options.onFatal } : {}) };
  const dynamo = await startLocalDynamo(dataDir ? { dataDir, ...supervision } : { prefix: `cc1${randomUUID().slice(0, 8)}`, ...supervision });
  const runCommand = await startLocalRunCommand({ instances, log: (line) => log(`run-command: ${line}`) });

  const config: RuntimeConfig = {
    ...readConfig(process.env),
    tablePrefix: dynamo.prefix,
    dynamodbEndpoint: dynamo.endpoint,
    ssmEndpoint: runCommand.url,
    storagePath,
    storageHostId: LOCAL_STORAGE_HOST_ID,
    storages,
    ssmDocumentNames: {},
    // Local commands finish in tens of milliseconds: poll them often.
    hostCommandPollMs: Number(process.env.HOST_COMMAND_POLL_MS ?? 25),
    ...options.config,
  };
  const container = buildContainer(config, { dynamo: dynamo.client, hosts: hostsOverSsm });
  useContainer(container);
  const { deps } = container;

  // The event source mappings of infra/storageImagesStack.ts (section 5), polled locally.
  const mapping = { endpoint: dynamo.endpoint, tableName: tableNames(config.tablePrefix).events, dataDir, bisectBatchOnError: true, retryAttempts: 10 };
  const inserts = (r: DynamoDBRecord) => r.eventName === 'INSERT'; // the log is append-only
  const projector = new Projector({ readModel: deps.readModel });
  const feed = new StreamPoller({
    ...mapping,
    name: 'projector',
    batchSize: 100,
    filter: inserts,
    handler: (event) => projector.processBatch(event),
    onError: (e) => log(`projector: ${String(e)}`),
    onDeadLetter: (l) => log(`projector dead letter: ${JSON.stringify(l.DDBStreamBatchInfo)}`),
  });
  const diskFiles = diskFilesSink(() => deps);
  const diskFeed = new StreamPoller({
    ...mapping,
    name: 'diskFiles',
    batchSize: 1, // one disk file per invocation, as deployed
    filter: inserts,
    handler: (event) => diskFiles.processBatch(event),
    onError: (e) => log(`disk files: ${String(e)}`),
    onDeadLetter: (l) => log(`disk files dead letter: ${JSON.stringify(l.DDBStreamBatchInfo)}`),
  });
  // Change notifications: the same consumer as the changeNotifications function, publishing into a list.
  const publishedEvents: PublishedEvent[] = [];
  const localBus: ChangePublisher = {
    publish: async (detail, time) => {
      publishedEvents.push({ source: CHANGE_EVENT_SOURCE, detailType: CHANGE_EVENT_DETAIL_TYPE, time, detail });
    },
  };
  const changes = changeNotificationsSink(() => localBus);
  const changeFeed = new StreamPoller({
    ...mapping,
    name: 'changeNotifications',
    batchSize: 100,
    filter: inserts,
    handler: (event) => changes.processBatch(event),
    onError: (e) => log(`change notifications: ${String(e)}`),
    onDeadLetter: (l) => log(`change notifications dead letter: ${JSON.stringify(l.DDBStreamBatchInfo)}`),
  });
  // The reconciler's schedule (infra: every RECONCILE_EVERY_MINUTES), so a cut attach is repaired without an operator.
  const reconcileEvery = options.reconcileIntervalMs ?? Number(process.env.CC1_RECONCILE_INTERVAL_MS ?? RECONCILE_EVERY_MINUTES * 60_000);
  let reconciling: Promise<unknown> = Promise.resolve();
  const reconcileTimer =
    reconcileEvery > 0
      ? setInterval(() => {
          reconciling = reconciling.then(() =>
            reconcile(deps, {
              cursor: container.reconcilerCursor,
              // As the deployed function: a run may take up to its 5-minute timeout.
              remainingTimeMs: () => RECONCILE_EVERY_MINUTES * 60_000,
              ...(options.reconcileSettleMs !== undefined ? { settleMs: options.reconcileSettleMs } : {}),
            })
              .then((report) => report.repairs.length > 0 && log(`reconciler: ${report.repairs.length} repairs`))
              .catch((e) => log(`reconciler: ${String(e)}`)),
          );
        }, reconcileEvery)
      : undefined;
  reconcileTimer?.unref();
  feed.start(options.feedIntervalMs ?? 200);
  diskFeed.start(options.feedIntervalMs ?? 200);
  changeFeed.start(options.feedIntervalMs ?? 200);

  const deadLetters: DeadLetter[] = [];
  const deadLetter = (entry: LocalEventEntry, reason: string) => {
    const letter = { time: new Date().toISOString(), reason, entry };
    deadLetters.push(letter);
    if (dataDir) appendFileSync(join(dataDir, 'dead-letters.jsonl'), JSON.stringify(letter) + '\n');
    log(`dead letter: ${reason}`);
  };

  /** EventBridge: accept well-formed entries, deliver to the rule's target, dead-letter failures. */
  const putEvents = async (entries: LocalEventEntry[]) => {
    const results = [];
    for (const entry of entries) {
      if (typeof entry?.Source !== 'string' || typeof entry.DetailType !== 'string' || typeof entry.Detail !== 'string') {
        results.push({ ErrorCode: 'InvalidArgument', ErrorMessage: 'Source, DetailType and Detail (a JSON string) are required.' });
        continue;
      }
      let detail: unknown;
      try {
        detail = JSON.parse(entry.Detail);
      } catch {
        results.push({ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is not valid JSON.' });
        continue;
      }
      if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) {
        results.push({ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail must be a JSON object.' });
        continue;
      }
      const eventId = randomUUID();
      results.push({ EventId: eventId });
      // The rule of the CDK stack: source cc1.hypervisor, detail-type VM State Change.
      if (entry.Source !== VM_EVENT_SOURCE || entry.DetailType !== VM_EVENT_DETAIL_TYPE) continue;
      const d = detail as { hostId?: unknown; domain?: unknown; state?: unknown; reason?: unknown };
      // With the simulated hypervisor, the event is the host's reality: the domain runs or not.
      // Every simulated host is this one machine: a migration's stop on the old host leaves the
      // domain running (on the new one).
      const migratedAway = d.state === 'stopped' && d.reason === 'migrated';
      if (hypervisor.kind === 'simulated' && !migratedAway && typeof d.domain === 'string' && /^vm-\d+-\d+$/.test(d.domain) && (d.state === 'running' || d.state === 'stopped')) {
        await setDomainRunning(simulatedStateFile, d.domain, d.state === 'running');
      }
      // Plain JSON clients send ISO text; the SDK sends epoch seconds (AWS JSON protocol).
      const time =
        typeof entry.Time === 'string' ? entry.Time : typeof entry.Time === 'number' && Math.abs(entry.Time) < 8.64e12 ? new Date(entry.Time * 1000).toISOString() : new Date().toISOString();
      const event = { version: '0', id: eventId, source: entry.Source, 'detail-type': entry.DetailType, account: '000000000000', time, region: 'local', resources: [], detail };
      try {
        await handleVmEvent(event);
      } catch (error) {
        deadLetter(entry, error instanceof Error ? error.message : String(error));
      }
    }
    return results;
  };

  const setOnline = (instanceId: string, online: boolean): boolean => {
    if (!HOST_ID.test(instanceId)) return false;
    runCommand.setOnline(instanceId, online);
    log(`host ${instanceId} ${online ? 'back on line' : 'off line'}`);
    return true;
  };

  const lambdaHandler = (h: typeof restApi) => (event: Parameters<typeof restApi>[0], context: Context) => h(event, context);
  const api = await startLocalApi({
    restApi: lambdaHandler(restApi),
    cc1Api: lambdaHandler(cc1Api),
    putEvents,
    localRoutes: {
      'dead-letters': async () => ({ items: deadLetters }),
      'stream-dead-letters': async () => ({ projector: feed.deadLetters, diskFiles: diskFeed.deadLetters, changeNotifications: changeFeed.deadLetters }),
      'published-events': async () => ({ items: publishedEvents }),
    },
    localActions: {
      // The redrive's delete of a dead letter (`npm run ops -- repair redrive-disk-files`), by request id.
      'DELETE stream-dead-letters/diskFiles': async (requestId) => (diskFeed.removeDeadLetter(requestId) ? 204 : 404),
      // A host's SSM agent goes away and comes back (tests of the dead letters and their redrive).
      'POST hosts-offline': async (instanceId) => (setOnline(instanceId, false) ? 204 : 404),
      'DELETE hosts-offline': async (instanceId) => (setOnline(instanceId, true) ? 204 : 404),
    },
    port: options.port ?? 0,
    ...(options.lambdaTimeoutMs ? { lambdaTimeoutMs: options.lambdaTimeoutMs } : {}),
  });
  // For `npm run ops -- reconcile`: where this running stack's endpoints are.
  const stackFile = dataDir ? join(dataDir, LOCAL_STACK_FILE) : undefined;
  if (stackFile) {
    const info = { url: api.url, dynamodbEndpoint: dynamo.endpoint, ssmEndpoint: runCommand.url, prefix: dynamo.prefix, storagePath, storageHostId: LOCAL_STORAGE_HOST_ID, storages };
    writeFileSync(stackFile, JSON.stringify(info) + '\n');
  }

  return {
    url: api.url,
    hypervisor,
    container,
    dynamo,
    runCommand,
    api,
    feed,
    diskFeed,
    changeFeed,
    publishedEvents,
    deadLetters,
    simulatedStateFile,
    storagePath,
    storages,
    drain: async () => {
      await feed.drain();
      await diskFeed.drain();
      await feed.drain();
      await changeFeed.drain();
    },
    close: async ({ drainMs = 0 } = {}) => {
      if (reconcileTimer) clearInterval(reconcileTimer);
      if (stackFile) rmSync(stackFile, { force: true });
      await api.close(drainMs);
      await reconciling;
      await feed.close();
      await diskFeed.close();
      await changeFeed.close();
      await runCommand.close();
      await dynamo.close();
      useContainer(undefined);
    },
  };
};
