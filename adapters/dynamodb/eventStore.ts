/**
 * The event store: the log on the events table (pk `streamId`, sk `version`, one item
 * per event, append-only), and each stream's head on the control table (`head#<streamId>`:
 * its version and the state after it), so loading is one GetItem whatever the stream's
 * length.
 *
 * A command step is ONE TransactWriteItems: the event (new key), the head (guarded by
 * the version it was read at: no version skipped or written twice), the read-model rows
 * that gets and lists read, and the step's device claims and quota entries. A lost race
 * cancels all of it; CancellationReasons tell which condition failed. The transaction
 * carries a ClientRequestToken, so the SDK's retry of a write whose answer was lost is
 * answered with the first outcome instead of a failed condition. See docs/event-store.md.
 */
import { randomUUID } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, TransactWriteCommand, paginateScan, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { initialState, type StorageImageState } from '../../domain/storageImage';
import {
  ConcurrencyError,
  DeviceClaimError,
  QuotaExceededError,
  WriteBoundError,
  type EventStore,
  type LoadedStream,
  type OpenOperationRecord,
  type StepEffects,
  type StoredEvent,
  type StreamAppend,
} from '../../application/storePorts';
import { toImageView } from '../../application/views';
import { parseStoredEvent } from './eventSchemas';
import { quotaKey, quotaUpdates } from './quotaLedger';
import { toRow, type ImagesTableSource } from './readModel';
import { vmKey, vmUpdates } from './vmDirectory';

/** The item of one event, as stored. */
export interface EventItem {
  streamId: string;
  version: number;
  type: string;
  time: string;
  cause: Record<string, unknown>;
  data: Record<string, unknown>;
  stateAfter: Record<string, unknown>;
  correlationId?: string;
}

export const toEventItem = (e: StoredEvent): EventItem => ({
  streamId: e.streamId,
  version: e.version,
  type: e.type,
  time: e.time,
  cause: e.cause as Record<string, unknown>,
  data: e.data as Record<string, unknown>,
  stateAfter: e.stateAfter as unknown as Record<string, unknown>,
  ...(e.correlationId ? { correlationId: e.correlationId } : {}),
});

/** An event item read back: checked against its type's schema (a bad item is an error, not data). */
export const fromEventItem = (item: Record<string, unknown>): StoredEvent => parseStoredEvent(item);

export const headKey = (streamId: string): string => `head#${streamId}`;

type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];

/** What each item of a transaction is, to read its cancellation reason. */
type ItemRole =
  | { role: 'row' }
  | { role: 'event' | 'head'; streamId: string; expectedVersion: number }
  | { role: 'vm'; vmId: number; devs: string[]; maxDevices: number; userId?: number; vmState?: 'running' | 'not-running' }
  | { role: 'quota'; userId: number; limitMb: number }
  | { role: 'binding'; key: string };

/** How long a write's key binding is kept: as long as Powertools keeps the request's record, and a day more. */
const BINDING_TTL_SECONDS = 2 * 24 * 3600;
export const bindingKey = (key: string): string => `write#${key}`;
/** An open host operation's item (application/saga.ts): one per image and slot. */
const OPERATION_PREFIX = 'op#';
export const operationKey = (imageId: number, slot: OpenOperationRecord['slot']): string => `${OPERATION_PREFIX}${imageId}#${slot}`;

export class DynamoEventStore implements EventStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
    readonly controlTable: string,
    private readonly images: ImagesTableSource,
    /** The correlation id of the work in progress, written on each event (see functions/shared/correlation.ts). */
    private readonly correlationId: () => string | undefined = () => undefined,
  ) {}

  async load(streamId: string): Promise<LoadedStream> {
    const out = await this.doc.send(new GetCommand({ TableName: this.controlTable, Key: { pk: headKey(streamId) }, ConsistentRead: true }));
    if (!out.Item) return { version: 0, state: initialState() };
    return { version: out.Item.version as number, state: out.Item.state as StorageImageState };
  }

  async commit(appends: StreamAppend[], effects: StepEffects = {}): Promise<StoredEvent[]> {
    if (appends.length === 0) throw new RangeError('a command step appends at least one event');
    const tables = await this.images.imagesTables();
    const items: TransactItem[] = [];
    const roles: ItemRole[] = [];
    const stored: StoredEvent[] = [];
    const correlationId = this.correlationId();
    for (const { streamId, expectedVersion, event, stateAfter } of appends) {
      if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) throw new RangeError(`bad expectedVersion ${expectedVersion}`);
      const e = { ...event, streamId, version: expectedVersion + 1, stateAfter, ...(correlationId ? { correlationId } : {}) } as StoredEvent;
      stored.push(e);
      // The key is new: a version is never written twice.
      items.push({ Put: { TableName: this.tableName, Item: toEventItem(e), ConditionExpression: 'attribute_not_exists(streamId)' } });
      roles.push({ role: 'event', streamId, expectedVersion }); // its failure names the stream too
      // The head moves from exactly the version read: no version is skipped (castore #168).
      items.push({
        Put: {
          TableName: this.controlTable,
          Item: { pk: headKey(streamId), version: e.version, state: stateAfter, time: e.time },
          ...(expectedVersion === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } }),
        },
      });
      roles.push({ role: 'head', streamId, expectedVersion });
      const view = toImageView(stateAfter, e.version);
      for (const table of view ? tables : []) {
        // No condition: the head serializes the writers of a stream, so this is the newest row.
        items.push({ Put: { TableName: table, Item: toRow(view!) } });
        roles.push({ role: 'row' });
      }
    }
    for (const update of vmUpdates(effects, e0Time(stored))) {
      items.push({ Update: { TableName: this.controlTable, Key: { pk: vmKey(update.vmId) }, ...update.expression, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } });
      roles.push({ role: 'vm', vmId: update.vmId, devs: update.devs, maxDevices: update.maxDevices, userId: update.userId, vmState: update.vmState });
    }
    for (const update of quotaUpdates(effects)) {
      items.push({ Update: { TableName: this.controlTable, Key: { pk: quotaKey(update.userId) }, ...update.expression, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } });
      roles.push({ role: 'quota', userId: update.userId, limitMb: update.limitMb });
    }
    for (const op of effects.operations?.open ?? []) {
      // Unconditional: the head guards the stream, and a retry's file operation replaces the one before.
      items.push({ Put: { TableName: this.controlTable, Item: { pk: operationKey(op.imageId, op.slot), ...op } } });
      roles.push({ role: 'row' });
    }
    for (const op of effects.operations?.close ?? []) {
      items.push({ Delete: { TableName: this.controlTable, Key: { pk: operationKey(op.imageId, op.slot) } } });
      roles.push({ role: 'row' });
    }
    if (effects?.binding) {
      const { key, imageId } = effects.binding;
      const expiration = Math.floor(Date.parse(e0Time(stored)) / 1000) + BINDING_TTL_SECONDS;
      items.push({
        Put: { TableName: this.controlTable, Item: { pk: bindingKey(key), imageId, expiration }, ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' },
      });
      roles.push({ role: 'binding', key });
    }
    try {
      await this.doc.send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: randomUUID() }));
    } catch (error) {
      throw cancellationError(error, roles);
    }
    return stored;
  }

  async openOperations(): Promise<OpenOperationRecord[]> {
    const records: OpenOperationRecord[] = [];
    const pages = paginateScan(
      { client: this.doc },
      { TableName: this.controlTable, FilterExpression: 'begins_with(pk, :p)', ExpressionAttributeValues: { ':p': OPERATION_PREFIX }, ConsistentRead: true },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        records.push({ imageId: item.imageId as number, slot: item.slot as OpenOperationRecord['slot'], opId: item.opId as string, since: item.since as string });
      }
    }
    return records.sort((a, b) => a.imageId - b.imageId || (a.slot < b.slot ? -1 : 1));
  }

  async readStream(streamId: string, options: { fromVersion?: number; limit?: number } = {}): Promise<{ events: StoredEvent[]; nextVersion?: number }> {
    const limit = options.limit ?? 1000;
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'streamId = :s AND version >= :v',
        ExpressionAttributeValues: { ':s': streamId, ':v': options.fromVersion ?? 1 },
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    const events = (out.Items ?? []).map(fromEventItem);
    const last = events[events.length - 1];
    return out.LastEvaluatedKey && last ? { events, nextVersion: last.version + 1 } : { events };
  }

  async *scanAll(options: { pageSize?: number } = {}): AsyncIterable<StoredEvent[]> {
    const pages = paginateScan({ client: this.doc, pageSize: options.pageSize }, { TableName: this.tableName, ConsistentRead: true });
    for await (const out of pages) {
      const page = (out.Items ?? []).map(fromEventItem);
      if (page.length > 0) yield page;
    }
  }
}

const e0Time = (stored: StoredEvent[]): string => stored[0]!.time;

/** Which condition cancelled the transaction, as the application's errors. */
const cancellationError = (error: unknown, roles: ItemRole[]): unknown => {
  const e = error as { name?: string; CancellationReasons?: { Code?: string; Item?: Record<string, AttributeValue> }[] };
  if (e.name !== 'TransactionCanceledException' || !e.CancellationReasons) return error;
  const reasons = e.CancellationReasons;
  // Another transaction held one of the items: the same as losing the race, decide again.
  const conflict = reasons.findIndex((r) => r.Code === 'TransactionConflict');
  const failed = reasons.map((r, i) => ({ r, role: roles[i]! })).filter(({ r }) => r.Code === 'ConditionalCheckFailed');
  const head = failed.find(({ role }) => role.role === 'head' || role.role === 'event');
  if (head || (conflict >= 0 && failed.length === 0)) {
    const role = (head?.role ?? roles.find((r) => r.role === 'head')) as Extract<ItemRole, { role: 'event' | 'head' }>;
    return new ConcurrencyError(role.streamId, role.expectedVersion);
  }
  const binding = failed.find(({ role }) => role.role === 'binding');
  if (binding && binding.role.role === 'binding') {
    const old = binding.r.Item ? unmarshall(binding.r.Item) : {};
    return new WriteBoundError(binding.role.key, Number(old.imageId));
  }
  const vm = failed.find(({ role }) => role.role === 'vm');
  if (vm && vm.role.role === 'vm') {
    const old = vm.r.Item ? unmarshall(vm.r.Item) : {};
    const { vmId, devs, maxDevices, userId, vmState } = vm.role;
    const running = old.state === 'running';
    const reason =
      devs.length === 0
        ? 'not_held'
        : vmState !== undefined && running !== (vmState === 'running')
          ? 'vm_state'
          : userId !== undefined && old.userId !== undefined && old.userId !== userId
        ? 'other_owner'
        : devs.some((dev) => old[`dev#${dev}`] !== undefined) || typeof old.deviceCount !== 'number' || old.deviceCount < maxDevices
            ? 'taken'
            : 'full';
    return new DeviceClaimError(vmId, devs[0] ?? '', reason);
  }
  const quota = failed.find(({ role }) => role.role === 'quota');
  if (quota && quota.role.role === 'quota') {
    const old = quota.r.Item ? unmarshall(quota.r.Item) : {};
    return new QuotaExceededError(quota.role.userId, (old.usedMb as number | undefined) ?? 0, quota.role.limitMb, old.limitMb as number | undefined);
  }
  return error;
};
