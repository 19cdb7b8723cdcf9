/**
 * Well-formed event streams for the store figures, made by the real decider: Created,
 * DiskReady, then Edited events (renames), each with its stateAfter, as
 * adapters/dynamodb/eventStore.ts stores them (toEventItem).
 */
import { BatchWriteItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { toEventItem } from '../adapters/dynamodb/eventStore';
import type { StoredEvent } from '../application/storePorts';
import { decide, evolve, initialState, streamIdOf, type CommandContext, type StorageImageCommand, type StorageImageState } from '../domain/storageImage';

const ctx = (userId: number): CommandContext => ({ actor: { kind: 'user', userId }, now: new Date().toISOString() });
const system: CommandContext = { actor: { kind: 'system', reason: 'disk-file' }, now: new Date().toISOString() };

/** Yields the events of image `imageId`, versions 1..length. */
export function* imageStream(imageId: number, userId: number, length: number): Generator<StoredEvent> {
  const streamId = streamIdOf(imageId);
  let state: StorageImageState = initialState();
  for (let version = 1; version <= length; version++) {
    const command: StorageImageCommand =
      version === 1
        ? { type: 'CreateStorageImage', imageId, name: `bench-${imageId}`, description: 'benchmark image', diskController: 'virtio', filesystem: 'raw', sizeMb: 10 }
        : version === 2
          ? { type: 'MarkDiskReady', storage: 'default' }
          : { type: 'EditStorageImage', name: `bench-${imageId}-${version}` };
    const [event] = decide(command, state, version === 2 ? system : ctx(userId));
    if (!event) throw new Error(`no event for ${command.type} at v${version}`);
    state = evolve(state, event);
    yield { ...event, streamId, version, stateAfter: state } as StoredEvent;
  }
}

/** The DynamoDB item of an event, marshalled as the store's document client would. */
export const eventItem = (e: StoredEvent) => marshall(toEventItem(e), { removeUndefinedValues: true, convertEmptyValues: false });

/** Writes events with BatchWriteItem (25 per request, `concurrency` in flight, pulled lazily), retrying unprocessed items. */
export const batchWriteEvents = async (client: DynamoDBClient, table: string, events: Iterable<StoredEvent>, concurrency = 4): Promise<number> => {
  const it = events[Symbol.iterator]();
  const take = (): StoredEvent[] => {
    const b: StoredEvent[] = [];
    for (let r = it.next(); !r.done; r = it.next()) {
      b.push(r.value);
      if (b.length === 25) break;
    }
    return b;
  };
  let written = 0;
  const worker = async () => {
    for (let b = take(); b.length; b = take()) {
      let requests = b.map((e) => ({ PutRequest: { Item: eventItem(e) } }));
      while (requests.length) {
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
        written += requests.length - (out.UnprocessedItems?.[table]?.length ?? 0);
        requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return written;
};
