/**
 * Operators' repairs and quotas (SPEC 4.7), the same use cases as the admin routes,
 * with the system as the cause (reason `forced`): `npm run ops -- repair ...` and
 * `npm run ops -- quota ...`. They write records only; the disk files follow through
 * the disk-file reaction of the running service (the Revoked event removes a file,
 * DiskRetried makes one), as after the admin routes.
 *
 * `repair redrive-disk-files` (redriveDiskFiles.ts) runs the disk-file reaction's dead
 * letters again, with the hosts. `repair retry-stuck` is for what no dead letter names
 * any more (the queue's 14-day retention passed, the queue was purged): every image stuck
 * `adding` gets DiskRetried, whose reaction makes the file as for a Created.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { forceDetachImage, forceRevokeImage, retryDiskFile, retryStuckImages } from '../application/repair';
import type { DeadLetters } from '../application/ports';
import { readStreamBatch } from '../adapters/dynamodb/streamBatches';
import { SqsDeadLetters } from '../adapters/sqs/deadLetters';
import { LocalStackDeadLetters } from '../local/stackDeadLetters';
import { quotaOf, setQuota } from '../application/quotas';
import type { ServiceDeps } from '../application/service';
import type { Actor } from '../domain/storageImage';
import { isDomainError } from '../domain/errors';
import type { Logger } from '../application/logger';
import { readConfig } from '../functions/shared/config';
import { localOptions, noHostsHere } from '../functions/shared/container';
import { positiveInt, withHosts, type OpsCommand, type OpsIo } from './commands';
import type { Connection } from './connect';
import { redriveDiskFiles } from './redriveDiskFiles';

/** Where the disk-files dead-letter queue is on AWS when no --queue-url is given (the stack output DiskFilesDlqUrl). */
export const DISK_FILES_DLQ_ENV = 'CC1_DISK_FILES_DLQ_URL';

/**
 * `repair redrive-disk-files`: on AWS, the SQS queue of --queue-url or CC1_DISK_FILES_DLQ_URL
 * (the stack output DiskFilesDlqUrl); locally, the dead letters of the running `npm start`.
 * The hosts as `reconcile` reaches them (withHosts).
 */
const redriveCommand = async (flags: string[], { stores }: Connection, io: OpsIo, usage: string): Promise<number> => {
  const aws = process.env.CC1_AWS === '1';
  const flagged = flags[0] === '--queue-url' && flags.length === 2 && /^https:\/\/\S+$/.test(flags[1]!) ? flags[1] : undefined;
  if (flags.length > 0 && (flagged === undefined || !aws)) {
    io.err(flagged && !aws ? '--queue-url is for AWS (CC1_AWS=1); locally the dead letters are those of the running `npm start`.' : `usage: ${usage}`);
    return 2;
  }
  const queueUrl = flagged ?? process.env[DISK_FILES_DLQ_ENV];
  if (aws && !queueUrl) {
    io.err(
      `the disk-files dead-letter queue: give --queue-url or ${DISK_FILES_DLQ_ENV}, the stack output DiskFilesDlqUrl:\n` +
        `  aws cloudformation describe-stacks --stack-name Cc1StorageImages --query "Stacks[0].Outputs[?OutputKey=='DiskFilesDlqUrl'].OutputValue" --output text`,
    );
    return 2;
  }
  const summary = await withHosts(stores.client, io, async ({ deps, local }) => {
    const streams = new DynamoDBStreamsClient(local ? localOptions(local.dynamodbEndpoint) : {});
    const sqs = aws ? new SQSClient({}) : undefined;
    try {
      const deadLetters: DeadLetters = sqs ? new SqsDeadLetters(sqs, queueUrl!) : new LocalStackDeadLetters(local!.url);
      io.err(`(dead letters: ${deadLetters.where})`);
      return await redriveDiskFiles(
        // Use-case logs on stderr; no metric lines on stdout.
        { deadLetters, readBatch: (batch) => readStreamBatch(streams, batch), deps: { ...deps, logger: stderrLogger(io), metrics: undefined } },
        io,
      );
    } finally {
      streams.destroy();
      sqs?.destroy();
    }
  });
  if (summary === undefined) return 1;
  return summary.kept === 0 ? 0 : 1;
};

const OPERATOR: Actor = { kind: 'system', reason: 'forced' };

/** Log lines of the use cases, on stderr (stdout holds the command's answer, JSON lines). */
export const stderrLogger = (io: OpsIo): Logger => {
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => io.err(JSON.stringify({ level, message, ...fields }));
  return { debug: () => undefined, info: log('INFO'), warn: log('WARN'), error: log('ERROR') };
};

/** Records-only deps: no host is asked from the CLI (the running service's reactions do the file work). */
const depsOf = ({ stores }: Connection, io: OpsIo): ServiceDeps => {
  const config = readConfig();
  return {
    events: stores.events,
    readModel: stores.readModel,
    vms: stores.vms,
    quota: stores.quota,
    ids: stores.ids,
    logger: stderrLogger(io),
    ...noHostsHere(config, 'the ops CLI, for records-only repairs,'),
    config: { defaultQuotaMb: config.defaultQuotaMb, maxDisksPerVm: config.maxDisksPerVm },
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
  usage: 'repair force-revoke|retry|force-detach <imageId> | repair redrive-disk-files [--queue-url URL] | repair retry-stuck [--older-than-minutes N]',
  summary:
    'admin repairs as the system (reason forced): revoke in any state but attached, make the disk file again, detach in the records only; ' +
    'redrive-disk-files runs the disk-file dead letters again (a sweep for records past the stream retention); retry-stuck retries every image left adding',
  async run(args, connection, io) {
    const [what, id, ...rest] = args;
    if (what === 'redrive-disk-files') return redriveCommand([id, ...rest].filter((a): a is string => a !== undefined), connection, io, this.usage);
    const deps = depsOf(connection, io);
    if (what === 'retry-stuck') {
      const flags = [id, ...rest].filter((a): a is string => a !== undefined);
      const minutes = flags[0] === '--older-than-minutes' ? positiveInt(flags[1]) : flags.length === 0 ? 10 : undefined;
      if (minutes === undefined) {
        io.err(`usage: ${this.usage}`);
        return 2;
      }
      const retried = await retryStuckImages(deps, Date.now() - minutes * 60_000, OPERATOR);
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
