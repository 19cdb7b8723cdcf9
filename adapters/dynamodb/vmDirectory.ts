/**
 * The VM directory and its device claims: one control item per VM, `vm#<vmId>`.
 * Each claimed device is a top-level attribute `dev#<name>` = {imageId, attachId, since},
 * and `deviceCount` counts them, so claims are one conditional update of the item
 * whether or not it exists yet (a SET on a nested map path fails when the map is
 * missing). Claims and releases are written only inside command steps (vmUpdates), in
 * the transaction that appends the event that explains them. See docs/event-store.md.
 */
import { GetCommand, UpdateCommand, paginateScan, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { FOREIGN_DISK, type DeviceClaim, type StepEffects, type VmDirectory, type VmRecord, type VmState, type VmStateChange } from '../../application/storePorts';
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
      devices[name.slice(DEVICE_PREFIX.length)] = {
        imageId: claim.imageId,
        attachId: claim.attachId ?? 'legacy',
        since: claim.since,
        ...(claim.vmTime !== undefined ? { vmTime: claim.vmTime } : {}),
      };
    }
  }
  return {
    vmId: item.vmId as number,
    userId: item.userId as number,
    ...(item.hostId !== undefined ? { hostId: item.hostId as string } : {}),
    ...(item.domain !== undefined ? { domain: item.domain as string } : {}),
    ...(item.state !== undefined ? { state: item.state as VmState } : {}),
    ...(item.stateTime !== undefined ? { stateTime: item.stateTime as string } : {}),
    ...(item.stopReason !== undefined ? { stopReason: item.stopReason as string } : {}),
    devices,
  };
};

/** The claim a FOREIGN_DISK holds: no attach of ours explains it. */
export const FOREIGN_ATTACH_ID = 'foreign';

export interface VmUpdate {
  vmId: number;
  devs: string[];
  maxDevices: number;
  userId?: number;
  vmState?: 'running' | 'not-running';
  expression: {
    UpdateExpression: string;
    ConditionExpression: string;
    ExpressionAttributeNames: Record<string, string>;
    ExpressionAttributeValues: Record<string, unknown>;
  };
}

/**
 * The VM item updates of a command step: one per VM (a transaction may touch an item
 * once), with every claim and release of that VM in it. A claim needs its device free,
 * room for it, and the VM unknown or the claimer's; a release needs the device held by
 * that same attach.
 */
export const vmUpdates = (effects: StepEffects, now: string): VmUpdate[] => {
  const byVm = new Map<number, { claims: NonNullable<StepEffects['claims']>; releases: NonNullable<StepEffects['releases']> }>();
  const of = (vmId: number) => byVm.get(vmId) ?? byVm.set(vmId, { claims: [], releases: [] }).get(vmId)!;
  for (const c of effects.claims ?? []) of(c.vmId).claims.push(c);
  for (const r of effects.releases ?? []) of(r.vmId).releases.push(r);
  return [...byVm].map(([vmId, { claims, releases }]) => {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':delta': claims.length - releases.length, ':zero': 0 };
    const sets = ['deviceCount = if_not_exists(deviceCount, :zero) + :delta', 'vmId = :vm'];
    const conditions: string[] = [];
    values[':vm'] = vmId;
    claims.forEach((c, i) => {
      names[`#c${i}`] = deviceAttr(c.dev);
      values[`:c${i}`] = { imageId: c.imageId, attachId: c.attachId, since: now, ...(c.vmTime !== undefined ? { vmTime: c.vmTime } : {}) };
      sets.push(`#c${i} = :c${i}`);
      conditions.push(`attribute_not_exists(#c${i})`);
    });
    const first = claims[0];
    const vmState = claims.find((c) => c.vmState)?.vmState;
    if (vmState) {
      names['#state'] = 'state';
      values[':running'] = 'running';
      conditions.push(vmState === 'running' ? '#state = :running' : '(attribute_not_exists(#state) OR #state <> :running)');
    }
    if (first) {
      values[':u'] = first.userId;
      values[':room'] = first.maxDevices - claims.length;
      sets.push('userId = if_not_exists(userId, :u)');
      conditions.push('(attribute_not_exists(userId) OR userId = :u)', '(attribute_not_exists(deviceCount) OR deviceCount <= :room)');
    }
    releases.forEach((r, i) => {
      names[`#r${i}`] = deviceAttr(r.dev);
      values[`:r${i}`] = r.attachId;
      conditions.push(`#r${i}.attachId = :r${i}`);
    });
    const removes = releases.map((_, i) => `#r${i}`);
    return {
      vmId,
      devs: claims.map((c) => c.dev),
      maxDevices: first?.maxDevices ?? 0,
      ...(first ? { userId: first.userId } : {}),
      ...(vmState ? { vmState } : {}),
      expression: {
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  });
};

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

  async claimForeignDisk(vmId: number, userId: number, dev: string, now: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: vmKey(vmId) },
          UpdateExpression: 'SET #dev = :claim, deviceCount = if_not_exists(deviceCount, :zero) + :one, userId = if_not_exists(userId, :u), vmId = :vm',
          ConditionExpression: 'attribute_not_exists(#dev)',
          ExpressionAttributeNames: { '#dev': deviceAttr(dev) },
          ExpressionAttributeValues: { ':claim': { imageId: FOREIGN_DISK, attachId: FOREIGN_ATTACH_ID, since: now }, ':zero': 0, ':one': 1, ':u': userId, ':vm': vmId },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailed(e)) return false;
      throw e;
    }
  }

  async releaseForeignDisk(vmId: number, dev: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: vmKey(vmId) },
          UpdateExpression: 'REMOVE #dev SET deviceCount = deviceCount - :one',
          ConditionExpression: '#dev.imageId = :foreign',
          ExpressionAttributeNames: { '#dev': deviceAttr(dev) },
          ExpressionAttributeValues: { ':foreign': FOREIGN_DISK, ':one': 1 },
        }),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e; // taken by an attach since, or free already
    }
  }

  async recordState(change: VmStateChange): Promise<{ applied: boolean; record: VmRecord }> {
    const time = normalizeTime(change.time);
    // A migrated VM runs on, on its new host: the old host's stop never stops it, and
    // no later stop from that host counts until the VM runs there again (`leftHosts`).
    // Only when newer than the VM's state: a migrated stop delivered after the VM came
    // back to that host (its newer `running`) must not drop the host's later stops.
    if (change.state === 'stopped' && change.reason === 'migrated') {
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: vmKey(change.vmId) },
            UpdateExpression: 'ADD leftHosts :h SET userId = if_not_exists(userId, :u), vmId = :vm, deviceCount = if_not_exists(deviceCount, :zero)',
            ConditionExpression: 'attribute_not_exists(stateTime) OR stateTime < :t',
            ExpressionAttributeValues: { ':h': new Set([change.hostId]), ':u': change.userId, ':vm': change.vmId, ':zero': 0, ':t': time },
          }),
        );
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
      }
      return { applied: false, record: await this.recordOf(change.vmId) };
    }
    const stop = change.state === 'stopped';
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: vmKey(change.vmId) },
          UpdateExpression:
            'SET #state = :state, hostId = :host, #domain = :domain, stateTime = :t, userId = :u, vmId = :vm, deviceCount = if_not_exists(deviceCount, :zero)' +
            (stop ? ', stopReason = :reason' : ' REMOVE stopReason DELETE leftHosts :hs'),
          // Ordered by the hosts' times, whichever host sent it: redelivered (equal time)
          // and older events change nothing, and a stop from a host the VM migrated away
          // from is dropped. (A stop was once required to come from the recorded host:
          // after a migration, the new host's stop delivered before its own `running` was
          // dropped, and that older `running` applied: the VM stayed "running".)
          ConditionExpression: stop
            ? '(attribute_not_exists(stateTime) OR stateTime < :t) AND NOT contains(leftHosts, :host)'
            : 'attribute_not_exists(stateTime) OR stateTime < :t',
          ExpressionAttributeNames: { '#state': 'state', '#domain': 'domain' },
          ExpressionAttributeValues: {
            ':state': change.state,
            ':host': change.hostId,
            ':domain': change.domain,
            ':t': time,
            ':u': change.userId,
            ':vm': change.vmId,
            ':zero': 0,
            ...(stop ? { ':reason': change.reason ?? 'stopped' } : { ':hs': new Set([change.hostId]) }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { applied: true, record: toVmRecord(out.Attributes ?? {}) };
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
    return { applied: false, record: await this.recordOf(change.vmId) };
  }

  private async recordOf(vmId: number): Promise<VmRecord> {
    const item = await this.item(vmId);
    return item ? toVmRecord(item) : { vmId, userId: 0, devices: {} };
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
