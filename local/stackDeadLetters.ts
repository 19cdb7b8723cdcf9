/**
 * The disk-file reaction's stream dead letters of a running `npm start`, as the redrive
 * reads them: `GET /_local/stream-dead-letters` (its `diskFiles` list, in the shape
 * Lambda sends to SQS) and `DELETE /_local/stream-dead-letters/diskFiles/<request id>`.
 * Each letter is handed out once per run, as SQS hides a received message.
 */
import type { DeadLetter, DeadLetters } from '../application/ports';
import { streamBatchOf } from '../adapters/sqs/deadLetters';
import type { StreamDeadLetter } from './streamPoller';

export class LocalStackDeadLetters implements DeadLetters {
  readonly where: string;
  private readonly handedOut = new Set<string>();

  constructor(private readonly stackUrl: string) {
    this.where = `${stackUrl}/_local/stream-dead-letters (diskFiles)`;
  }

  async receive(): Promise<DeadLetter[]> {
    const res = await fetch(`${this.stackUrl}/_local/stream-dead-letters`);
    if (!res.ok) throw new Error(`GET ${this.stackUrl}/_local/stream-dead-letters: HTTP ${res.status}`);
    const { diskFiles } = (await res.json()) as { diskFiles: StreamDeadLetter[] };
    const fresh = diskFiles.filter((l) => !this.handedOut.has(l.requestContext.requestId)).slice(0, 10);
    return fresh.map((l) => {
      this.handedOut.add(l.requestContext.requestId);
      const body = JSON.stringify(l);
      return { id: l.requestContext.requestId, body, ...streamBatchOf(body) };
    });
  }

  async delete(letter: DeadLetter): Promise<void> {
    const res = await fetch(`${this.stackUrl}/_local/stream-dead-letters/diskFiles/${encodeURIComponent(letter.id)}`, { method: 'DELETE' });
    // 404: gone already (another redrive): what was wanted.
    if (res.status !== 204 && res.status !== 404) throw new Error(`DELETE dead letter ${letter.id}: HTTP ${res.status}`);
  }
}
