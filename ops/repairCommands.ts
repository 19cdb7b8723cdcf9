/**
 * Operators' repairs and quotas (SPEC 4.7), the same use cases as the admin routes,
 * with the system as the cause (reason `forced`): `npm run ops -- repair ...` and
 * `npm run ops -- quota ...`. They write records only; the disk files follow through
 * the disk-file reaction of the running service (the Revoked event removes a file,
 * DiskRetried makes one), as after the admin routes.
 *
 * `repair retry-stuck` is the redrive of the disk-files dead letters: a Created (or
 * DiskRetried) whose reaction gave up left its image `adding`; retrying every image
 * stuck in `adding` re-runs exactly those reactions, on AWS and locally alike, without
 * reading the dead-letter queue (whose messages name stream positions, not events).
 */
import { forceDetachImage, forceRevokeImage, retryDiskFile } from '../application/repair';
import { quotaOf, setQuota } from '../application/quotas';
import type { ServiceDeps } from '../application/service';
import type { Actor } from '../domain/storageImage';
import { isDomainError } from '../domain/errors';
import { readConfig } from '../functions/shared/config';
import type { OpsCommand, OpsIo } from './commands';
import type { Connection } from './connect';

const OPERATOR: Actor = { kind: 'system', reason: 'forced' };
const positiveInt = (s: string | undefined): number | undefined => (s !== undefined && /^[1-9]\d{0,14}$/.test(s) ? Number(s) : undefined);

/** Records-only deps: no host is asked from the CLI (the running service's reactions do the file work). */
const depsOf = ({ stores }: Connection, io: OpsIo): ServiceDeps => {
  const refuse = async (): Promise<never> => {
    throw new Error('the ops CLI does not call hosts for repairs');
  };
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => io.err(JSON.stringify({ level, message, ...fields }));
  return {
    events: stores.events,
    readModel: stores.readModel,
    vms: stores.vms,
    quota: stores.quota,
    ids: stores.ids,
    logger: { debug: () => undefined, info: log('INFO'), warn: log('WARN'), error: log('ERROR') },
    hypervisor: { attachDisk: refuse, detachDisk: refuse, listDisks: refuse, resizeDisk: refuse },
    storage: { storageIds: ['default'], freeSpaceMb: refuse, mkfsTools: refuse, createDiskFile: refuse, deleteDiskFile: refuse, resizeDiskFile: refuse, pathOf: () => '' },
    config: { defaultQuotaMb: readConfig().defaultQuotaMb, maxDisksPerVm: readConfig().maxDisksPerVm },
  };
};

/** A refusal of the rules is an answer (exit 1), not a crash. */
const answer = async (io: OpsIo, run: () => Promise<unknown>): Promise<number> => {
  try {
    io.out(JSON.stringify(await run()));
    return 0;
  } catch (error) {
    if (!isDomainError(error)) throw error;
    io.err(`${error.code}: ${error.message}`);
    return 1;
  }
};

export const repairCommand: OpsCommand = {
  name: 'repair',
  usage: 'repair force-revoke|retry|force-detach <imageId> | repair retry-stuck [--older-than-minutes N]',
  summary: 'admin repairs as the system (reason forced): revoke in any state but attached, make the disk file again, detach in the records only; retry-stuck redrives every image left adding (the disk-files dead letters)',
  async run(args, connection, io) {
    const [what, id, ...rest] = args;
    const deps = depsOf(connection, io);
    if (what === 'retry-stuck') {
      const flags = [id, ...rest].filter((a): a is string => a !== undefined);
      const minutes = flags[0] === '--older-than-minutes' ? positiveInt(flags[1]) : flags.length === 0 ? 10 : undefined;
      if (minutes === undefined) {
        io.err(`usage: ${this.usage}`);
        return 2;
      }
      const before = Date.now() - minutes * 60_000;
      const retried: number[] = [];
      let nextToken: string | undefined;
      do {
        const page = await deps.readModel.listAll({ limit: 500, ...(nextToken ? { nextToken } : {}) });
        for (const image of page.items) {
          if (image.state !== 'adding') continue;
          // Stuck since its last event: the head's time.
          const { state } = await deps.events.load(`image-${image.id}`);
          const head = await deps.events.readStream(`image-${image.id}`, { fromVersion: image.version, limit: 1 });
          const since = Date.parse(head.events[0]?.time ?? '');
          if (state.status !== 'adding' || !(since < before)) continue;
          await retryDiskFile(deps, image.id, OPERATOR);
          retried.push(image.id);
        }
        nextToken = page.nextToken;
      } while (nextToken);
      io.out(JSON.stringify({ retried }));
      return 0;
    }
    const imageId = positiveInt(id);
    if (imageId === undefined) {
      io.err(`usage: ${this.usage}`);
      return 2;
    }
    switch (what) {
      case 'force-revoke':
        return answer(io, () => forceRevokeImage(deps, imageId, OPERATOR));
      case 'retry':
        return answer(io, () => retryDiskFile(deps, imageId, OPERATOR));
      case 'force-detach': {
        const vmId = rest[0] === '--vm' ? positiveInt(rest[1]) : undefined;
        if (rest.length > 0 && vmId === undefined) {
          io.err(`usage: ${this.usage} [--vm <vmId>]`);
          return 2;
        }
        return answer(io, () => forceDetachImage(deps, imageId, vmId, OPERATOR));
      }
      default:
        io.err(`usage: ${this.usage}`);
        return 2;
    }
  },
};

export const quotaCommand: OpsCommand = {
  name: 'quota',
  usage: 'quota get <userId> | quota set <userId> <limitMb|default>',
  summary: "show a user's quota and use, or set their own limit (default: back to the deployment's DEFAULT_QUOTA_MB)",
  async run(args, connection, io) {
    const [what, id, value] = args;
    const userId = positiveInt(id);
    const deps = depsOf(connection, io);
    if (what === 'get' && userId !== undefined) return answer(io, () => quotaOf(deps, userId));
    if (what === 'set' && userId !== undefined && value !== undefined && (value === 'default' || /^\d{1,16}$/.test(value))) {
      return answer(io, () => setQuota(deps, userId, value === 'default' ? null : Number(value), OPERATOR));
    }
    io.err(`usage: ${this.usage}`);
    return 2;
  },
};
