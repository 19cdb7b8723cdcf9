/**
 * Test support: the tables under a random prefix on the shared DynamoDB Local, per test
 * file, with stream pollers on its events table; plus small builders of StorageImage
 * events with their states.
 */
import { randomBytes } from 'node:crypto';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamo';
import { StreamPoller, type StreamHandler, type StreamPollerOptions } from '../../local/streamPoller';
import { createDynamoStores, type DynamoStores } from '../../adapters/dynamodb';
import { evolve, initialState, streamIdOf, type NewEvent, type StorageImageState } from '../../domain/storageImage';
import type { StoredEvent } from '../../application/storePorts';

export interface TestDynamo {
  local: LocalDynamo;
  prefix: string;
  stores: DynamoStores;
  /** A poller of the events table's stream (from its start), closed with the rest. */
  poller(handler: StreamHandler, options?: Partial<StreamPollerOptions>): StreamPoller;
  close(): Promise<void>;
}

export const startTestDynamo = async (options: { idBlockSize?: number; readModelTtlMs?: number } = {}): Promise<TestDynamo> => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const local = await startLocalDynamo({ prefix });
  const stores = createDynamoStores({ client: local.client, prefix, idBlockSize: options.idBlockSize ?? 1, readModelTtlMs: options.readModelTtlMs });
  const pollers: StreamPoller[] = [];
  const poller = (handler: StreamHandler, options: Partial<StreamPollerOptions> = {}) => {
    const p = new StreamPoller({ endpoint: local.endpoint, tableName: stores.names.events, handler, ...options });
    pollers.push(p);
    return p;
  };
  const close = async () => {
    for (const p of pollers) await p.close();
    await local.close();
  };
  return { local, prefix, stores, poller, close };
};

/** In a describe/file: a server started in beforeAll and closed in afterAll. */
export const useTestDynamo = (options?: { idBlockSize?: number; readModelTtlMs?: number }): (() => TestDynamo) => {
  let current: TestDynamo | undefined;
  beforeAll(async () => {
    current = await startTestDynamo(options);
  });
  afterAll(async () => {
    await current?.close();
  });
  return () => {
    if (!current) throw new Error('test dynamo not started');
    return current;
  };
};

// ---------------------------------------------------------------------------
// Event builders

const T0 = Date.parse('2024-05-01T10:00:00.000Z');
export const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();

const user = (userId: number) => ({ kind: 'user' as const, userId });

export const created = (imageId: number, userId: number, sizeMb = 100, time = at(0)): NewEvent => ({
  type: 'StorageImageCreated',
  data: { imageId, userId, name: `disk ${imageId}`, description: '', diskController: 'virtio', filesystem: 'raw', sizeMb },
  time,
  cause: user(userId),
});
export const diskReady = (userId: number, time = at(1)): NewEvent => ({ type: 'StorageImageDiskReady', data: {}, time, cause: { kind: 'system', reason: 'disk-file' } });
export const edited = (userId: number, name: string, time = at(2)): NewEvent => ({ type: 'StorageImageEdited', data: { name }, time, cause: user(userId) });
export const attached = (userId: number, vmId: number, diskDev: string, time = at(3)): NewEvent => ({
  type: 'StorageImageAttached',
  data: { vmId, diskDev, mode: 'boot' },
  time,
  cause: user(userId),
});
export const detached = (vmId: number, diskDev: string, time = at(4)): NewEvent => ({
  type: 'StorageImageDetached',
  data: { vmId, diskDev },
  time,
  cause: { kind: 'system', reason: 'vm-stopped' },
});
export const revoked = (userId: number, time = at(5)): NewEvent => ({ type: 'StorageImageRevoked', data: {}, time, cause: user(userId) });

/** The stored events of one stream: versions 1..n, each with the state after it. */
export const storedStream = (imageId: number, events: NewEvent[]): StoredEvent[] => {
  let state: StorageImageState = initialState();
  return events.map((e, i) => {
    state = evolve(state, e);
    return { ...e, streamId: streamIdOf(imageId), version: i + 1, stateAfter: state } as StoredEvent;
  });
};

/** Appends the events of one stream through the store, as the application would. */
export const appendStream = async (stores: DynamoStores, imageId: number, events: NewEvent[]): Promise<StoredEvent[]> => {
  const stored: StoredEvent[] = [];
  for (const e of storedStream(imageId, events)) {
    const { version, stateAfter, streamId, ...event } = e;
    stored.push(await stores.events.append(streamId, version - 1, event as NewEvent, stateAfter));
  }
  return stored;
};
