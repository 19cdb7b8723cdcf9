/**
 * The ops commands, as a table: `npm run ops -- <name> [args]`. To add one, write an
 * OpsCommand and list it in COMMANDS (one that needs no table: a StandaloneCommand,
 * listed in cli.ts, as replayVmEvents.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { checkQuotaLedgers, quotaFromLog, rebuildImages } from '../adapters/dynamodb';
import { reconcile } from '../application/reconciler';
import type { ServiceDeps } from '../application/service';
import type { StorageLocation } from '../application/storageChoice';
import { streamIdOf } from '../domain/storageImage';
import { ID_PATTERN } from '../domain/ids';
import { readConfig, type RuntimeConfig } from '../functions/shared/config';
import { buildContainer } from '../functions/shared/container';
import { hostsOverSsm } from '../functions/shared/hostsOverSsm';
import { localClient, localDataDir } from '../local/dynamo';
import type { Connection } from './connect';

export interface OpsIo {
  out(line: string): void;
  err(line: string): void;
}

export interface OpsCommand {
  name: string;
  usage: string;
  summary: string;
  standalone?: false;
  /** Returns the exit code. */
  run(args: string[], connection: Connection, io: OpsIo): Promise<number>;
}

/** A command that works on no table (the CLI opens no connection for it). */
export interface StandaloneCommand {
  name: string;
  usage: string;
  summary: string;
  standalone: true;
  /** Returns the exit code. */
  run(args: string[], io: OpsIo): Promise<number>;
}

/** An id or count from the command line; at most 15 digits, so the Number is exact. */
export const positiveInt = (s: string | undefined): number | undefined => (s !== undefined && ID_PATTERN.test(s) ? Number(s) : undefined);

export const rebuildCommand: OpsCommand = {
  name: 'rebuild',
  usage: 'rebuild images | rebuild quota [--dry-run]',
  summary: 'rebuild the images read model from the event log into a fresh table and switch to it; or reset the quota ledgers from the log',
  async run(args, { stores, exclusive }, io) {
    const [what, ...flags] = args;
    if (what === 'images') {
      const report = await rebuildImages({
        client: stores.client,
        doc: stores.doc,
        prefix: stores.prefix,
        events: stores.events,
        locator: stores.locator,
        // Alone on the data: no other writer has to see the new table first.
        ...(exclusive ? { catchUpDelayMs: 0 } : {}),
        log: (m) => io.err(m),
      });
      io.out(JSON.stringify(report));
      io.err(`reads now use ${report.to}; the old table ${report.from} is kept: delete it when satisfied (aws dynamodb delete-table --table-name ${report.from}).`);
      return 0;
    }
    if (what === 'quota') {
      if (flags.includes('--dry-run')) {
        for (const [userId, images] of await quotaFromLog(stores.events)) {
          const usedMb = Object.values(images).reduce((a, b) => a + b, 0);
          io.out(JSON.stringify({ userId, usedMb, images }));
        }
        return 0;
      }
      // The ledger is written only with the events: a difference is a bug to report, not to paper over.
      const differences = await checkQuotaLedgers(stores.events, stores.quota);
      io.out(JSON.stringify({ differences }));
      return differences.length === 0 ? 0 : 1;
    }
    io.err(`usage: ${this.usage}`);
    return 2;
  },
};

export const historyCommand: OpsCommand = {
  name: 'history',
  usage: 'history <imageId>',
  summary: 'print every event of an image, one JSON line each: {type, version, time, cause, data}',
  async run(args, { stores }, io) {
    const imageId = positiveInt(args[0]);
    if (imageId === undefined) {
      io.err(`usage: ${this.usage}`);
      return 2;
    }
    let page = await stores.events.readStream(streamIdOf(imageId));
    if (page.events.length === 0) {
      io.err(`no events for image ${imageId}`);
      return 1;
    }
    for (;;) {
      for (const e of page.events) io.out(JSON.stringify({ type: e.type, version: e.version, time: e.time, cause: e.cause, data: e.data }));
      if (page.nextVersion === undefined) return 0;
      page = await stores.events.readStream(streamIdOf(imageId), { fromVersion: page.nextVersion });
    }
  },
};

/** What a running `npm start` writes into its data dir (local/stack.ts, LOCAL_STACK_FILE). */
export const LOCAL_STACK_FILE = 'local-stack.json';

export interface LocalStackInfo {
  url: string;
  dynamodbEndpoint: string;
  ssmEndpoint: string;
  prefix: string;
  storagePath: string;
  storageHostId: string;
  /** Every storage (absent in files of older versions: the one above). */
  storages?: StorageLocation[];
}

export const reconcileCommand: OpsCommand = {
  name: 'reconcile',
  usage: 'reconcile [--settle-seconds N]',
  summary: 'compare the records with `virsh domblklist` of every running VM and repair what a crash left (work younger than N s, default 120, is left alone); prints the report as JSON',
  async run(args, { stores }, io) {
    let settleMs: number | undefined;
    for (let i = 0; i < args.length; i++) {
      const n = args[i] === '--settle-seconds' && /^\d+$/.test(args[i + 1] ?? '') ? Number(args[++i]) : undefined;
      if (n === undefined) {
        io.err(`usage: ${this.usage}`);
        return 2;
      }
      settleMs = n * 1000;
    }
    const report = await withHosts(stores.client, io, async ({ deps }) =>
      // Repairs are counted in the report; no metric lines on stdout.
      reconcile({ ...deps, metrics: undefined }, settleMs === undefined ? {} : { settleMs }),
    );
    if (report === undefined) return 1;
    io.out(JSON.stringify(report));
    return 0;
  },
};

/** The service's dependencies with the hosts, and where the local stack runs (locally). */
export interface HostAccess {
  deps: ServiceDeps;
  config: RuntimeConfig;
  /** The running `npm start` (local mode only). */
  local?: LocalStackInfo;
}

/**
 * Runs `run` with the hosts reached through SSM: on AWS as the functions do (their
 * environment: TABLE_PREFIX, STORAGE_PATH, STORAGE_HOST_ID or STORAGES,
 * SSM_DOCUMENT_NAMES); locally through the Run Command endpoint of the running `npm
 * start`. Undefined (said on stderr) when there is no running local stack.
 */
export const withHosts = async <T>(dynamo: DynamoDBClient, io: OpsIo, run: (access: HostAccess) => Promise<T>): Promise<T | undefined> => {
  let config: RuntimeConfig;
  let local: LocalStackInfo | undefined;
  let ownClient: { destroy(): void } | undefined;
  if (process.env.CC1_AWS === '1') {
    config = readConfig();
  } else {
    const file = join(localDataDir(), LOCAL_STACK_FILE);
    if (!existsSync(file)) {
      io.err(`no running local server: ${file} is missing. This command asks the hosts through the Run Command endpoint of \`npm start\`; start it first.`);
      return undefined;
    }
    local = JSON.parse(readFileSync(file, 'utf8')) as LocalStackInfo;
    config = {
      ...readConfig(),
      tablePrefix: local.prefix,
      dynamodbEndpoint: local.dynamodbEndpoint,
      ssmEndpoint: local.ssmEndpoint,
      storagePath: local.storagePath,
      storageHostId: local.storageHostId,
      storages: local.storages,
      ssmDocumentNames: {},
      hostCommandPollMs: 25,
    };
    dynamo = localClient(local.dynamodbEndpoint);
    ownClient = dynamo;
    io.err(`(hosts through ${local.ssmEndpoint}, the Run Command endpoint of ${local.url})`);
  }
  try {
    const { deps } = buildContainer(config, { dynamo, hosts: hostsOverSsm });
    return await run({ deps, config, ...(local ? { local } : {}) });
  } finally {
    ownClient?.destroy();
  }
};

export const COMMANDS: OpsCommand[] = [rebuildCommand, historyCommand, reconcileCommand];
