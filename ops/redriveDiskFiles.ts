/**
 * `npm run ops -- repair redrive-disk-files`: the redrive of the disk-file reaction's
 * dead letters (SPEC 4.7). A dead letter names a stream range, not the records: each is
 * read again from the events table's stream (adapters/dynamodb/streamBatches.ts) and
 * run, one record per invocation as the deployed mapping does, through the same
 * consumer as the diskFiles function (functions/diskFiles/reaction.ts) with the hosts
 * reached over SSM. The reaction is idempotent (a Revoked removes the file if present, a
 * Created makes the file only while the image is `adding`), so a letter redriven twice,
 * or a record that succeeded after all, does no harm. A letter is deleted only when all
 * its records succeeded.
 *
 * Records past the stream's 24 h retention are not lost: a sweep does what they would
 * have done, over the time the letters cover (images still `adding` get DiskRetried,
 * as `retry-stuck`; revoked images have their file removed if it is there), and then
 * their letters are deleted. The output says which letters took that way.
 *
 * Output: one JSON line per letter, then a summary line. Exit 0 when no letter is left,
 * 1 when some are kept (run again once the cause is fixed).
 */
import type { DynamoDBRecord } from 'aws-lambda';
import { DISK_FILE_EVENT_TYPES } from '../application/diskFiles';
import type { DeadLetter, DeadLetters, StreamBatchInfo } from '../application/ports';
import { removeFilesOfRevoked, retryStuckImages } from '../application/repair';
import type { ServiceDeps } from '../application/service';
import type { Actor } from '../domain/storageImage';
import { StreamBatchGone } from '../adapters/dynamodb/streamBatches';
import { diskFilesSink } from '../functions/diskFiles/reaction';
import type { OpsIo } from './commands';

const OPERATOR: Actor = { kind: 'system', reason: 'forced' };

/** Stream record times are approximate (to the second) and may trail the event's time: widen the window. */
const SLACK_MS = 5 * 60_000;

export interface RedriveParts {
  deadLetters: DeadLetters;
  /** The records of a batch, in stream order; throws StreamBatchGone past the retention. */
  readBatch(batch: StreamBatchInfo): Promise<DynamoDBRecord[]>;
  /** With the hosts (the reaction makes and removes files). */
  deps: ServiceDeps;
  now?: () => number;
}

export interface RedriveSummary {
  letters: number;
  redriven: number;
  swept: number;
  kept: number;
}

/** What the deployed mapping lets through to diskFiles (infra/storageImagesStack.ts, section 5). */
const forDiskFiles = (record: DynamoDBRecord): boolean =>
  record.eventName === 'INSERT' && (DISK_FILE_EVENT_TYPES as readonly string[]).includes(record.dynamodb?.NewImage?.type?.S ?? '');

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export const redriveDiskFiles = async (parts: RedriveParts, io: OpsIo): Promise<RedriveSummary> => {
  const { deadLetters, deps } = parts;
  const now = parts.now ?? Date.now;
  let lastError: string | undefined;
  const sink = diskFilesSink(() => deps, { onRecordError: (error) => (lastError = message(error)) });
  const summary: RedriveSummary = { letters: 0, redriven: 0, swept: 0, kept: 0 };
  const pastRetention: DeadLetter[] = [];

  const keep = (line: Record<string, unknown>) => {
    summary.kept += 1;
    io.out(JSON.stringify({ ...line, kept: true }));
  };

  for (let letters = await deadLetters.receive(); letters.length > 0; letters = await deadLetters.receive()) {
    for (const letter of letters) {
      summary.letters += 1;
      const { batch } = letter;
      if (!batch) {
        keep({ letter: letter.id, outcome: 'unreadable', error: 'not a stream batch description (DDBStreamBatchInfo)', body: letter.body.slice(0, 500) });
        continue;
      }
      const range = { shardId: batch.shardId, startSequenceNumber: batch.startSequenceNumber, endSequenceNumber: batch.endSequenceNumber };
      let records: DynamoDBRecord[];
      try {
        records = (await parts.readBatch(batch)).filter(forDiskFiles);
      } catch (error) {
        if (error instanceof StreamBatchGone) {
          pastRetention.push(letter);
          io.out(JSON.stringify({ letter: letter.id, ...range, outcome: 'past-retention', reason: error.reason, next: 'sweep' }));
        } else {
          keep({ letter: letter.id, ...range, outcome: 'unread', error: message(error) });
        }
        continue;
      }
      // One record per invocation, in stream order, as deployed (batch size 1); a failure stops the letter.
      let failed: { sequenceNumber: string | undefined; error?: string } | undefined;
      let done = 0;
      for (const record of records) {
        try {
          lastError = undefined;
          const response = await sink.processBatch({ Records: [record] });
          if (response.batchItemFailures.length > 0) failed = { sequenceNumber: record.dynamodb?.SequenceNumber, ...(lastError ? { error: lastError } : {}) };
        } catch (error) {
          failed = { sequenceNumber: record.dynamodb?.SequenceNumber, error: message(error) };
        }
        if (failed) break;
        done += 1;
      }
      if (failed) {
        keep({ letter: letter.id, ...range, outcome: 'failed', records: records.length, done, failedAt: failed.sequenceNumber, ...(failed.error ? { error: failed.error } : {}) });
        continue;
      }
      await deadLetters.delete(letter);
      summary.redriven += 1;
      io.out(JSON.stringify({ letter: letter.id, ...range, outcome: 'redriven', records: records.length, deleted: true }));
    }
  }

  if (pastRetention.length > 0) {
    const window = sweepWindow(pastRetention, now());
    try {
      const retried = await retryStuckImages(deps, window.to, OPERATOR);
      const filesRemoved = await removeFilesOfRevoked(deps, window);
      for (const letter of pastRetention) await deadLetters.delete(letter);
      summary.swept += pastRetention.length;
      io.out(
        JSON.stringify({
          sweep: 'records past the stream retention: did what they would have done',
          letters: pastRetention.map((l) => l.id),
          window: { from: window.from === undefined ? null : new Date(window.from).toISOString(), to: new Date(window.to).toISOString() },
          retried,
          filesRemoved,
          deleted: true,
        }),
      );
    } catch (error) {
      summary.kept += pastRetention.length;
      io.out(JSON.stringify({ sweep: 'failed', letters: pastRetention.map((l) => l.id), error: message(error), kept: true }));
    }
  }
  io.out(JSON.stringify(summary));
  return summary;
};

/**
 * The time the given-up records were written, from the letters' approximate arrival
 * times, widened by SLACK_MS; a letter without them (an older local one) opens the window
 * to any time before it was written.
 */
const sweepWindow = (letters: DeadLetter[], now: number): { from?: number; to: number } => {
  const times = (pick: (b: StreamBatchInfo) => string | undefined) => letters.map((l) => Date.parse(pick(l.batch!) ?? ''));
  const firsts = times((b) => b.approximateArrivalOfFirstRecord);
  const lasts = times((b) => b.approximateArrivalOfLastRecord);
  if (firsts.some(Number.isNaN) || lasts.some(Number.isNaN)) {
    const written = letters.map((l) => Date.parse(l.timestamp ?? ''));
    // No time at all: anything older than retry-stuck's default settle time (younger work is in flight).
    return { to: written.some(Number.isNaN) ? now - 10 * 60_000 : Math.max(...written) + SLACK_MS };
  }
  return { from: Math.min(...firsts) - SLACK_MS, to: Math.max(...lasts) + SLACK_MS };
};
