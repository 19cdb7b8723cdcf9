/**
 * Test support: the tables under a random prefix on the shared DynamoDB Local, per test
 * file, with stream pollers on its events table; small builders of StorageImage events
 * with their states; ServiceDeps over the real stores with a host that does nothing (for
 * tests of the store, not of the hosts).
 */
import { ALL_MKFS_TOOLS } from '../../domain/catalog';
import { randomBytes } from 'node:crypto';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamo';
import { StreamPoller, type StreamHandler, type StreamPollerOptions } from '../../local/streamPoller';
import { createDynamoStores, type DynamoStores } from '../../adapters/dynamodb';
import { evolve, initialState, streamIdOf, type NewEvent, type StorageImageState } from '../../domain/storageImage';
import type { StepEffects, StoredEvent } from '../../application/storePorts';
import type { Hypervisor, StorageHost } from '../../application/ports';
import type { ServiceDeps } from '../../application/storageImages';
import { silentLogger } from '../../application/logger';

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
/** A boot-time Attached (its attachId is a placeholder: these streams carry no device claims). */
export const attached = (userId: number, vmId: number, diskDev: string, time = at(3)): NewEvent => ({
  type: 'StorageImageAttached',
  data: { vmId, diskDev, mode: 'boot', attachId: `image-${vmId}-${diskDev}` },
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

/** A quota limit no test stream reaches. */
export const NO_LIMIT_MB = 1e12;

/**
 * Appends the events of one stream through the store, one commit per event as the
 * application would, with the quota entries of Created and Revoked in the same commit
 * (so the ledgers agree with the log).
 */
export const appendStream = async (stores: DynamoStores, imageId: number, events: NewEvent[]): Promise<StoredEvent[]> => {
  const stored: StoredEvent[] = [];
  for (const e of storedStream(imageId, events)) {
    const { version, stateAfter, streamId, ...event } = e;
    const effects: StepEffects =
      stateAfter.status === 'none'
        ? {}
        : event.type === 'StorageImageCreated'
          ? { quota: { reserve: { userId: stateAfter.image.userId, imageId, sizeMb: stateAfter.image.sizeMb, limitMb: NO_LIMIT_MB } } }
          : event.type === 'StorageImageRevoked'
            ? { quota: { release: { userId: stateAfter.image.userId, imageId, sizeMb: stateAfter.image.sizeMb } } }
            : {};
    const [one] = await stores.events.commit([{ streamId, expectedVersion: version - 1, event: event as NewEvent, stateAfter }], effects);
    stored.push(one!);
  }
  return stored;
};

// ---------------------------------------------------------------------------
// The application over the real stores

/** A host that does what it is asked and remembers it: hosts are not what these tests test. */
export const fakeHosts = (): { hypervisor: Hypervisor & { attached: Map<string, string> }; storage: StorageHost } => {
  const attached = new Map<string, string>(); // `${domain}/${dev}` -> file
  return {
    hypervisor: {
      attached,
      attachDisk: async ({ domain, dev, file }) => void attached.set(`${domain}/${dev}`, file),
      detachDisk: async ({ domain, dev }) => void attached.delete(`${domain}/${dev}`),
      listDisks: async ({ domain }) =>
        [...attached].filter(([k]) => k.startsWith(`${domain}/`)).map(([k, source]) => ({ dev: k.slice(domain.length + 1), source })),
      resizeDisk: async () => undefined,
    },
    storage: {
      storageIds: ['default'],
      freeSpaceMb: async () => 1e9,
      createDiskFile: async () => undefined,
      deleteDiskFile: async () => undefined,
      resizeDiskFile: async () => undefined,
      pathOf: ({ userId, imageId }) => `/images/${userId}/${imageId}`,
      mkfsTools: async () => [...ALL_MKFS_TOOLS],
    },
  };
};

/** ServiceDeps over the real DynamoDB stores, with fake hosts. */
export const serviceDeps = (stores: DynamoStores, config: Partial<ServiceDeps['config']> = {}): ServiceDeps & { hypervisor: ReturnType<typeof fakeHosts>['hypervisor'] } => {
  const hosts = fakeHosts();
  return {
    events: stores.events,
    readModel: stores.readModel,
    vms: stores.vms,
    quota: stores.quota,
    ids: stores.ids,
    logger: silentLogger,
    hypervisor: hosts.hypervisor,
    storage: hosts.storage,
    config: { defaultQuotaMb: 1000, maxDisksPerVm: 10, ...config },
  };
};
