/**
 * The event store on one DynamoDB table: pk `streamId`, sk `version` (N). Every item
 * carries the aggregate state after its event, so the newest item is the stream head:
 * load = one Query (newest first, Limit 1, consistent). Append = one conditional
 * PutItem at `expectedVersion + 1`. See docs/event-store.md.
 */
import { PutCommand, QueryCommand, paginateQuery, paginateScan, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { NewEvent, StorageImageState } from '../../domain/storageImage';
import { initialState } from '../../domain/storageImage';
import { ConcurrencyError, type EventStore, type LoadedStream, type StoredEvent } from '../../application/storePorts';
import { isConditionFailed } from './dynamo';

/** The item of one event, as stored. */
export interface EventItem {
  streamId: string;
  version: number;
  type: string;
  time: string;
  cause: Record<string, unknown>;
  data: Record<string, unknown>;
  stateAfter: Record<string, unknown>;
}

export const toEventItem = (e: StoredEvent): EventItem => ({
  streamId: e.streamId,
  version: e.version,
  type: e.type,
  time: e.time,
  cause: e.cause as Record<string, unknown>,
  data: e.data as Record<string, unknown>,
  stateAfter: e.stateAfter as unknown as Record<string, unknown>,
});

/** Trusts the item's shape: only this adapter writes the table. */
export const fromEventItem = (item: Record<string, unknown>): StoredEvent =>
  ({
    streamId: item.streamId,
    version: item.version,
    type: item.type,
    time: item.time,
    cause: item.cause,
    data: item.data ?? {},
    stateAfter: item.stateAfter,
  }) as StoredEvent;

/**
 * An append at a version the store has never seen (castore issue #168): the caller's
 * expectedVersion is ahead of the stream, so writing it would leave a gap. A bug, not
 * a race: nothing was written.
 */
export class VersionGapError extends Error {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    readonly headVersion: number,
  ) {
    super(`stream ${streamId} is at version ${headVersion}; appending after ${expectedVersion} would skip a version`);
    this.name = 'VersionGapError';
  }
}

const SEEN_CAP = 10_000;

export class DynamoEventStore implements EventStore {
  /**
   * The highest version this instance has seen exist per stream (consistent reads and
   * its own writes). Events are never deleted, so a version once seen exists forever:
   * an append after it cannot leave a gap and needs no extra read.
   */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  private see(streamId: string, version: number): void {
    if ((this.seen.get(streamId) ?? 0) >= version) return;
    if (this.seen.size >= SEEN_CAP) this.seen.clear();
    this.seen.set(streamId, version);
  }

  async load(streamId: string): Promise<LoadedStream> {
    const head = await this.head(streamId);
    this.see(streamId, head.version);
    return head;
  }

  private async head(streamId: string): Promise<LoadedStream> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'streamId = :s',
        ExpressionAttributeValues: { ':s': streamId },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const head = out.Items?.[0];
    if (!head) return { version: 0, state: initialState() };
    return { version: head.version as number, state: head.stateAfter as StorageImageState };
  }

  async append(streamId: string, expectedVersion: number, event: NewEvent, stateAfter: StorageImageState): Promise<StoredEvent> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) throw new RangeError(`bad expectedVersion ${expectedVersion}`);
    if (expectedVersion > (this.seen.get(streamId) ?? 0)) {
      // Not seen by this instance: make sure version `expectedVersion` exists (one consistent read).
      const { version } = await this.head(streamId);
      this.see(streamId, version);
      if (version < expectedVersion) throw new VersionGapError(streamId, expectedVersion, version);
    }
    const stored = { ...event, streamId, version: expectedVersion + 1, stateAfter } as StoredEvent;
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: toEventItem(stored),
          // The key (streamId, version) must be new: a version is never written twice.
          ConditionExpression: 'attribute_not_exists(streamId)',
        }),
      );
    } catch (e) {
      if (isConditionFailed(e)) throw new ConcurrencyError(streamId, expectedVersion);
      throw e;
    }
    this.see(streamId, stored.version);
    return stored;
  }

  async readStream(streamId: string, fromVersion = 1): Promise<StoredEvent[]> {
    const events: StoredEvent[] = [];
    const pages = paginateQuery(
      { client: this.doc },
      {
        TableName: this.tableName,
        KeyConditionExpression: 'streamId = :s AND version >= :v',
        ExpressionAttributeValues: { ':s': streamId, ':v': fromVersion },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) for (const item of page.Items ?? []) events.push(fromEventItem(item));
    const last = events[events.length - 1];
    if (last) this.see(streamId, last.version);
    return events;
  }

  async *scanAll(options: { pageSize?: number } = {}): AsyncIterable<StoredEvent[]> {
    const pages = paginateScan({ client: this.doc, pageSize: options.pageSize }, { TableName: this.tableName, ConsistentRead: true });
    for await (const out of pages) {
      const page = (out.Items ?? []).map(fromEventItem);
      if (page.length > 0) yield page;
    }
  }
}
