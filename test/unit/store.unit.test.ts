/**
 * Error paths of the DynamoDB adapters, with a mocked client (the happy paths run
 * against DynamoDB Local in test/int/store*.int.test.ts).
 */
import { mockClient } from 'aws-sdk-client-mock';
import { ConditionalCheckFailedException, DynamoDBClient, ProvisionedThroughputExceededException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  DynamoEventStore,
  DynamoIdAllocator,
  DynamoImageReadModel,
  DynamoVmDirectory,
  InvalidPageTokenError,
  ReadModelLocator,
  createTableInput,
  fixedImagesTable,
  documentClient,
  imagesTable,
  storedEventOf,
  tableNames,
} from '../../adapters/dynamodb';
import { ConcurrencyError, DeviceClaimError, QuotaExceededError, type StepEffects } from '../../application/storePorts';
import { DomainError } from '../../domain/errors';
import { storedStream, created, diskReady } from '../support/dynamo';

const doc = documentClient(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }));
const mock = mockClient(DynamoDBDocumentClient);
const ccf = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
const throttled = () => new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} });

beforeEach(() => mock.reset());

/** What DynamoDB answers when a transaction's conditions fail: one reason per item, in order. */
const cancelled = (...reasons: ({ Code: string; Item?: Record<string, unknown> } | 'None')[]) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: {},
    CancellationReasons: reasons.map((r) => (r === 'None' ? { Code: 'None' } : { Code: r.Code, ...(r.Item ? { Item: marshall(r.Item) } : {}) })),
  });
const CCF = 'ConditionalCheckFailed';

describe('event store errors (commit: one TransactWriteItems)', () => {
  const [, e2] = storedStream(1, [created(1, 7), diskReady(7)]);
  const store = () => new DynamoEventStore(doc, 'events', 'control', fixedImagesTable('images'));
  // Items of one append: event, head, row; then the VM item, then the quota item.
  const commit = (effects?: StepEffects) => store().commit([{ streamId: 'image-1', expectedVersion: 1, event: diskReady(7), stateAfter: e2!.stateAfter }], effects);
  const claims: StepEffects = { claims: [{ vmId: 9, userId: 7, dev: 'vdb', imageId: 1, attachId: 'image-1@2', maxDevices: 2 }] };

  it('a failed head or event condition, or a conflict with another transaction, is a ConcurrencyError', async () => {
    mock.on(TransactWriteCommand).rejectsOnce(cancelled('None', { Code: CCF }, 'None')).rejectsOnce(cancelled({ Code: CCF }, 'None', 'None')).rejectsOnce(cancelled('None', { Code: 'TransactionConflict' }, 'None'));
    for (let i = 0; i < 3; i++) {
      const error = await commit().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ streamId: 'image-1', expectedVersion: 1 });
    }
  });

  it('a failed VM condition is a DeviceClaimError: taken, full, other_owner, from the item as it was', async () => {
    const vmFailed = (Item: Record<string, unknown>) => cancelled('None', 'None', 'None', { Code: CCF, Item });
    mock
      .on(TransactWriteCommand)
      .rejectsOnce(vmFailed({ pk: 'vm#9', userId: 7, deviceCount: 1, 'dev#vdb': { imageId: 2, attachId: 'image-2@5' } }))
      .rejectsOnce(vmFailed({ pk: 'vm#9', userId: 7, deviceCount: 2, 'dev#vdc': { imageId: 2 }, 'dev#vdd': { imageId: 3 } }))
      .rejectsOnce(vmFailed({ pk: 'vm#9', userId: 8, deviceCount: 0 }));
    for (const reason of ['taken', 'full', 'other_owner']) {
      const error = await commit(claims).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeviceClaimError);
      expect(error).toMatchObject({ vmId: 9, dev: 'vdb', reason });
    }
  });

  it('a failed release condition is not_held', async () => {
    mock.on(TransactWriteCommand).rejects(cancelled('None', 'None', 'None', { Code: CCF, Item: { pk: 'vm#9', 'dev#vdb': { attachId: 'other' } } }));
    await expect(commit({ releases: [{ vmId: 9, dev: 'vdb', attachId: 'image-1@2' }] })).rejects.toMatchObject({ name: 'DeviceClaimError', reason: 'not_held' });
  });

  it('a failed quota condition is a QuotaExceededError with the use the item had', async () => {
    mock.on(TransactWriteCommand).rejects(cancelled('None', 'None', 'None', { Code: CCF, Item: { pk: 'quota#7', usedMb: 950 } }));
    const error = await commit({ quota: { reserve: { userId: 7, imageId: 1, sizeMb: 100, limitMb: 1000 } } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error).toMatchObject({ userId: 7, usedMb: 950, limitMb: 1000 });
  });

  it('any other error (throttling, a cancellation without reasons we know) is passed on as it is', async () => {
    mock.on(TransactWriteCommand).rejectsOnce(throttled()).rejectsOnce(cancelled('None', 'None', { Code: 'ValidationError' }));
    await expect(commit()).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
    await expect(commit()).rejects.toBeInstanceOf(TransactionCanceledException);
  });

  it('writes event, head (guarded by the version read), row, claims and quota in one request with a ClientRequestToken', async () => {
    mock.on(TransactWriteCommand).resolves({});
    await commit({ ...claims, quota: { reserve: { userId: 7, imageId: 1, sizeMb: 100, limitMb: 1000 } } });
    const [call] = mock.commandCalls(TransactWriteCommand);
    const input = call!.args[0].input;
    expect(input.ClientRequestToken).toEqual(expect.any(String));
    expect(input.TransactItems!.map((t) => Object.keys(t)[0])).toEqual(['Put', 'Put', 'Put', 'Update', 'Update']);
    expect(input.TransactItems![1]!.Put).toMatchObject({ TableName: 'control', Item: { pk: 'head#image-1', version: 2 }, ExpressionAttributeValues: { ':expected': 1 } });
    expect(input.TransactItems![0]!.Put).toMatchObject({ TableName: 'events', ConditionExpression: 'attribute_not_exists(streamId)' });
  });

  it('load is one consistent GetItem of the head; no head is a stream not begun (version 0, no image)', async () => {
    mock.on(GetCommand).resolvesOnce({ Item: { pk: 'head#image-1', version: 2, state: e2!.stateAfter } }).resolvesOnce({});
    expect(await store().load('image-1')).toEqual({ version: 2, state: e2!.stateAfter });
    expect(mock.commandCalls(GetCommand)[0]!.args[0].input).toEqual({ TableName: 'control', Key: { pk: 'head#image-1' }, ConsistentRead: true });
    expect(await store().load('image-2')).toEqual({ version: 0, state: { status: 'none' } });
    expect(mock.commandCalls(GetCommand)).toHaveLength(2);
  });

  it('a size above the limit can never pass the condition, not even on a user\'s first image', async () => {
    mock.on(TransactWriteCommand).resolves({});
    await commit({ quota: { reserve: { userId: 7, imageId: 1, sizeMb: 2000, limitMb: 1000 } } });
    const quota = (mock.commandCalls(TransactWriteCommand)[0]!.args[0].input.TransactItems ?? []).at(-1)!.Update!;
    // No `attribute_not_exists(usedMb)` escape: a missing usedMb fails `usedMb <= -1000`.
    expect(quota.ConditionExpression).not.toMatch(/attribute_not_exists\(usedMb\)/);
    expect(quota.ExpressionAttributeValues).toMatchObject({ ':room': -1000 });
  });
});

describe('VM directory errors', () => {
  it('recordState refuses a time that is not a time, before any request', async () => {
    const vms = new DynamoVmDirectory(doc, 'control');
    await expect(vms.recordState({ vmId: 1, userId: 5, domain: 'vm-1-5', hostId: 'i-1', state: 'running', time: 'yesterday' })).rejects.toThrow(RangeError);
    expect(mock.calls()).toHaveLength(0);
  });

  it('a state write whose condition fails is not applied; other errors are passed on', async () => {
    const vms = new DynamoVmDirectory(doc, 'control');
    mock.on(UpdateCommand).rejectsOnce(ccf()).rejectsOnce(throttled());
    mock.on(GetCommand).resolves({ Item: { pk: 'vm#1', vmId: 1, userId: 5, state: 'running' } });
    const change = { vmId: 1, userId: 5, domain: 'vm-1-5', hostId: 'i-1', state: 'running' as const, time: '2026-01-01T00:00:00Z' };
    expect(await vms.recordState(change)).toMatchObject({ applied: false, record: { state: 'running' } });
    await expect(vms.recordState(change)).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
  });
});

describe('read model errors', () => {
  it('apply: a failed condition is stale, other errors are passed on', async () => {
    const rm = new DynamoImageReadModel(doc, 'images');
    const [e1] = storedStream(1, [created(1, 7)]);
    mock.on(PutCommand).rejectsOnce(ccf()).rejectsOnce(throttled());
    expect(await rm.apply(e1!)).toBe('stale');
    await expect(rm.apply(e1!)).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
  });

  it('bad page tokens are validation errors (HTTP 400)', async () => {
    const rm = new DynamoImageReadModel(doc, 'images');
    const token = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    for (const bad of ['%%%', token([1]), token({ userId: 1 }), token({ userId: 1, id: 'x' }), token({ userId: 1, id: 2, extra: 3 })]) {
      const error = await rm.listByOwner(1, { limit: 10, nextToken: bad }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidPageTokenError);
      expect(error).toBeInstanceOf(DomainError);
      expect((error as DomainError).httpStatus).toBe(400);
    }
    expect(mock.calls()).toHaveLength(0);
  });

  it('a short page (filtered rows) is topped up until the limit or the end', async () => {
    const rm = new DynamoImageReadModel(doc, 'images');
    const row = (id: number) => ({ userId: 1, id, name: 'n', state: 'ok', version: 1 });
    mock
      .on(QueryCommand)
      .resolvesOnce({ Items: [row(1)], LastEvaluatedKey: { userId: 1, id: 3 } })
      .resolvesOnce({ Items: [], LastEvaluatedKey: { userId: 1, id: 5 } })
      .resolvesOnce({ Items: [row(6), row(7)], LastEvaluatedKey: { userId: 1, id: 7 } });
    const page = await rm.listByOwner(1, { limit: 3 });
    expect(page.items.map((v) => v.id)).toEqual([1, 6, 7]);
    expect(page.items[0]).toMatchObject({ vmId: null, diskDev: null });
    expect(JSON.parse(Buffer.from(page.nextToken!, 'base64url').toString())).toEqual({ userId: 1, id: 7 });
    expect(mock.commandCalls(QueryCommand).map((c) => c.args[0].input.Limit)).toEqual([3, 2, 2]);
  });

  it('the locator caches the table name for its TTL and falls back to v1', async () => {
    let now = 0;
    const locator = new ReadModelLocator(doc, 'p-control', 'p', 5000, () => now);
    mock.on(GetCommand).resolvesOnce({}).resolves({ Item: { pk: 'readmodel#images', table: 'p-images-v2' } });
    expect(await locator.imagesTable()).toBe('p-images-v1');
    now = 4999;
    expect(await locator.imagesTable()).toBe('p-images-v1');
    now = 5000;
    expect(await locator.imagesTable()).toBe('p-images-v2');
    expect(mock.commandCalls(GetCommand)).toHaveLength(2);
  });
});

describe('ids', () => {
  it('concurrent callers share one refill', async () => {
    const ids = new DynamoIdAllocator(doc, 'control', 5);
    mock.on(UpdateCommand).resolvesOnce({ Attributes: { next: 5 } }).resolvesOnce({ Attributes: { next: 10 } });
    const got = await Promise.all(Array.from({ length: 7 }, () => ids.nextImageId()));
    expect(got.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(mock.commandCalls(UpdateCommand)).toHaveLength(2);
  });
});

describe('stream records', () => {
  it('REMOVE records and records without a new image carry no event', () => {
    expect(storedEventOf({ eventName: 'REMOVE', dynamodb: { Keys: { streamId: { S: 'image-1' }, version: { N: '1' } } } })).toBeUndefined();
    expect(storedEventOf({ eventName: 'INSERT', dynamodb: {} })).toBeUndefined();
  });
});

describe('table definitions', () => {
  it('name tables by prefix and declare each key attribute once', () => {
    expect(tableNames('cc1')).toMatchObject({ events: 'cc1-events', control: 'cc1-control', imagesV1: 'cc1-images-v1' });
    expect(tableNames('cc1').images(3)).toBe('cc1-images-v3');
    const input = createTableInput('cc1', imagesTable(2));
    expect(input.TableName).toBe('cc1-images-v2');
    expect(input.AttributeDefinitions.map((a) => a.AttributeName).sort()).toEqual(['id', 'state', 'userId', 'vmId']);
    expect(input.GlobalSecondaryIndexes?.map((g) => g.IndexName)).toEqual(['byId', 'byVm', 'byOwnerState', 'byState']);
  });
});
