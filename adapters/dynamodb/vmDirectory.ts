/**
 * The VM directory and its device claims: one control item per VM, `vm#<vmId>`.
 * Each claimed device is a top-level attribute `dev#<name>` = {imageId, since}, and
 * `deviceCount` counts them, so a claim is ONE conditional UpdateItem whether or not
 * the item exists yet (a SET on a nested map path fails when the map is missing, on
 * AWS and on dynalite alike). See docs/event-store.md.
 */
import { GetCommand, UpdateCommand, paginateScan, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type {
  ClaimResult,
  DeviceClaim,
  VmDirectory,
  VmRecord,
  VmState,
  VmStateChange,
} from '../../application/storePorts';
import { isConditionFailed } from './dynamo';

export const vmKey = (vmId: number): string => `vm#${vmId}`;
export const DEVICE_PREFIX = 'dev#';
const deviceAttr = (dev: string): string => `${DEVICE_PREFIX}${dev}`;

/** Host times may differ in precision; stored normalized so that string order is time order. */
export const normalizeTime = (time: string): string => {
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) throw new RangeError(`not a time: ${JSON.stringify(time)}`);
  return new Date(ms).toISOString();
};

export const toVmRecord = (item: Record<string, unknown>): VmRecord => {
  const devices: Record<string, DeviceClaim> = {};
  for (const [name, value] of Object.entries(item)) {
    if (name.startsWith(DEVICE_PREFIX)) {
      const claim = value as DeviceClaim;
      devices[name.slice(DEVICE_PREFIX.length)] = { imageId: claim.imageId, since: claim.since };
    }
  }
  return {
    vmId: item.vmId as number,
    userId: item.userId as number,
    ...(item.hostId !== undefined ? { hostId: item.hostId as string } : {}),
    ...(item.domain !== undefined ? { domain: item.domain as string } : {}),
    ...(item.state !== undefined ? { state: item.state as VmState } : {}),
    ...(item.stateTime !== undefined ? { stateTime: item.stateTime as string } : {}),
    devices,
  };
};

const MAX_CLAIM_ROUNDS = 5;

export class DynamoVmDirectory implements VmDirectory {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  private async item(vmId: number): Promise<Record<string, unknown> | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: vmKey(vmId) }, ConsistentRead: true }));
    return out.Item;
  }

  async get(vmId: number): Promise<VmRecord | undefined> {
    const item = await this.item(vmId);
    return item ? toVmRecord(item) : undefined;
  }

  async claimDevice(vmId: number, userId: number, dev: string, imageId: number, maxDevices: number, now: string): Promise<ClaimResult> {
    if (dev.length === 0) throw new RangeError('empty device name');
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: vmKey(vmId) },
            UpdateExpression: 'SET #dev = :claim, deviceCount = if_not_exists(deviceCount, :zero) + :one, userId = if_not_exists(userId, :u), vmId = :vm',
            ConditionExpression:
              '(attribute_not_exists(userId) OR userId = :u) AND attribute_not_exists(#dev) AND (attribute_not_exists(deviceCount) OR deviceCount < :max)',
            ExpressionAttributeNames: { '#dev': deviceAttr(dev) },
            ExpressionAttributeValues: {
              ':claim': { imageId, since: now },
              ':zero': 0,
              ':one': 1,
              ':u': userId,
              ':vm': vmId,
              ':max': maxDevices,
            },
          }),
        );
        return { ok: true };
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
      }
      // Why did it fail? Read the item (consistent) and tell.
      const item = await this.item(vmId);
      if (!item) continue; // cannot fail on a missing item; only if deleted meanwhile: try again
      if (item.userId !== undefined && item.userId !== userId) return { ok: false, reason: 'other_owner' };
      const holder = item[deviceAttr(dev)] as DeviceClaim | undefined;
      if (holder) return holder.imageId === imageId ? { ok: true } : { ok: false, reason: 'taken' };
      if (typeof item.deviceCount === 'number' && item.deviceCount >= maxDevices) return { ok: false, reason: 'full' };
      // The item changed between the write and the read (a release): try again.
    }
    return { ok: false, reason: 'taken' };
  }

  async releaseDevice(vmId: number, dev: string, imageId: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: vmKey(vmId) },
          UpdateExpression: 'REMOVE #dev SET deviceCount = deviceCount - :one',
          ConditionExpression: '#dev.imageId = :img',
          ExpressionAttributeNames: { '#dev': deviceAttr(dev) },
          ExpressionAttributeValues: { ':img': imageId, ':one': 1 },
        }),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e; // held by another image, or free already: nothing to do
    }
  }

  async recordState(change: VmStateChange): Promise<{ applied: boolean; record: VmRecord }> {
    const time = normalizeTime(change.time);
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: vmKey(change.vmId) },
          UpdateExpression:
            'SET #state = :state, hostId = :host, #domain = :domain, stateTime = :t, userId = :u, vmId = :vm, deviceCount = if_not_exists(deviceCount, :zero)',
          // Redelivered (equal time) and older events change nothing.
          ConditionExpression: 'attribute_not_exists(stateTime) OR stateTime < :t',
          ExpressionAttributeNames: { '#state': 'state', '#domain': 'domain' },
          ExpressionAttributeValues: {
            ':state': change.state,
            ':host': change.hostId,
            ':domain': change.domain,
            ':t': time,
            ':u': change.userId,
            ':vm': change.vmId,
            ':zero': 0,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { applied: true, record: toVmRecord(out.Attributes ?? {}) };
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
    const item = await this.item(change.vmId);
    if (!item) throw new Error(`vm#${change.vmId} vanished while recording its state`);
    return { applied: false, record: toVmRecord(item) };
  }

  async list(): Promise<VmRecord[]> {
    const records: VmRecord[] = [];
    const pages = paginateScan(
      { client: this.doc },
      { TableName: this.tableName, FilterExpression: 'begins_with(pk, :p)', ExpressionAttributeValues: { ':p': 'vm#' }, ConsistentRead: true },
    );
    for await (const page of pages) for (const item of page.Items ?? []) records.push(toVmRecord(item));
    return records.sort((a, b) => a.vmId - b.vmId);
  }
}
