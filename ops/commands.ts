/**
 * The ops commands, as a table: `npm run ops -- <name> [args]`. To add one, write an
 * OpsCommand and list it in COMMANDS.
 */
import { quotaFromLog, rebuildImages, rebuildQuotaLedgers } from '../adapters/dynamodb';
import { streamIdOf } from '../domain/storageImage';
import type { Connection } from './connect';

export interface OpsIo {
  out(line: string): void;
  err(line: string): void;
}

export interface OpsCommand {
  name: string;
  usage: string;
  summary: string;
  /** Returns the exit code. */
  run(args: string[], connection: Connection, io: OpsIo): Promise<number>;
}

const positiveInt = (s: string | undefined): number | undefined => (s !== undefined && /^[1-9]\d*$/.test(s) ? Number(s) : undefined);

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
        // Alone on the data: no projector can still be writing to the old table.
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
      const changed = await rebuildQuotaLedgers(stores.events, stores.quota);
      io.out(JSON.stringify({ changedUsers: changed }));
      return 0;
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
    const events = await stores.events.readStream(streamIdOf(imageId));
    if (events.length === 0) {
      io.err(`no events for image ${imageId}`);
      return 1;
    }
    for (const e of events) io.out(JSON.stringify({ type: e.type, version: e.version, time: e.time, cause: e.cause, data: e.data }));
    return 0;
  },
};

export const COMMANDS: OpsCommand[] = [rebuildCommand, historyCommand];
