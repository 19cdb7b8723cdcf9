/**
 * Error paths of the DynamoDB adapters, with a mocked client (the happy paths run
 * against dynalite in test/int/store*.int.test.ts).
 */
import { mockClient } from 'aws-sdk-client-mock';
import { ConditionalCheckFailedException, DynamoDBClient, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  DynamoEventStore,
  DynamoIdAllocator,
  DynamoImageReadModel,
  DynamoQuotaLedger,
  DynamoVmDirectory,
  InvalidPageTokenError,
  ReadModelLocator,
  VersionGapError,
  createTableInput,
  documentClient,
  imagesTable,
  storedEventOf,
  tableNames,
} from '../../adapters/dynamodb';
import { ConcurrencyError } from '../../application/storePorts';
import { DomainError } from '../../domain/errors';
import { storedStream, created, diskReady } from '../support/dynamo';

const doc = documentClient(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }));
const mock = mockClient(DynamoDBDocumentClient);
const ccf = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
const throttled = () => new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} });

beforeEach(() => mock.reset());

describe('event store errors', () => {
  const [e1, e2] = storedStream(1, [created(1, 7), diskReady(7)]);

  it('a failed condition is a ConcurrencyError; any other error is passed on as it is', async () => {
    const store = new DynamoEventStore(doc, 'events');
    mock.on(PutCommand).rejectsOnce(ccf()).rejectsOnce(throttled());
    await expect(store.append('image-1', 0, created(1, 7), e1!.stateAfter)).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(store.append('image-1', 0, created(1, 7), e1!.stateAfter)).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
  });

  it('an append ahead of the head it reads is a VersionGapError, and nothing is written', async () => {
    const store = new DynamoEventStore(doc, 'events');
    mock.on(QueryCommand).resolves({ Items: [{ streamId: 'image-1', version: 1, stateAfter: e1!.stateAfter }] });
    await expect(store.append('image-1', 2, diskReady(7), e2!.stateAfter)).rejects.toBeInstanceOf(VersionGapError);
    expect(mock.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('load asks for one item, newest first, strongly consistent', async () => {
    const store = new DynamoEventStore(doc, 'events');
    mock.on(QueryCommand).resolves({ Items: [{ streamId: 'image-1', version: 2, stateAfter: e2!.stateAfter }] });
    expect(await store.load('image-1')).toEqual({ version: 2, state: e2!.stateAfter });
    expect(mock.commandCalls(QueryCommand)[0]!.args[0].input).toMatchObject({ Limit: 1, ScanIndexForward: false, ConsistentRead: true });
  });
});

describe('VM directory errors', () => {
  it('a claim that lost a race with a release tries again', async () => {
    const vms = new DynamoVmDirectory(doc, 'control');
    mock.on(UpdateCommand).rejectsOnce(ccf()).resolves({});
    mock.on(GetCommand).resolves({ Item: { pk: 'vm#1', vmId: 1, userId: 5, deviceCount: 9 } }); // room again, device free
    expect(await vms.claimDevice(1, 5, 'vdb', 3, 10, 't')).toEqual({ ok: true });
    expect(mock.commandCalls(UpdateCommand)).toHaveLength(2);
  });

  it('other errors of a claim are passed on', async () => {
    const vms = new DynamoVmDirectory(doc, 'control');
    mock.on(UpdateCommand).rejects(throttled());
    await expect(vms.claimDevice(1, 5, 'vdb', 3, 10, 't')).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
    await expect(vms.releaseDevice(1, 'vdb', 3)).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
  });

  it('a release whose condition fails is a no-op', async () => {
    const vms = new DynamoVmDirectory(doc, 'control');
    mock.on(UpdateCommand).rejects(ccf());
    await expect(vms.releaseDevice(1, 'vdb', 3)).resolves.toBeUndefined();
  });

  it('recordState refuses a time that is not a time, before any request', async () => {
    const vms = new DynamoVmDirectory(doc, 'control');
    await expect(vms.recordState({ vmId: 1, userId: 5, domain: 'vm-1-5', hostId: 'i-1', state: 'running', time: 'yesterday' })).rejects.toThrow(RangeError);
    expect(mock.calls()).toHaveLength(0);
  });
});

describe('quota ledger errors', () => {
  it('a reserve that lost a race with a release tries again', async () => {
    const quota = new DynamoQuotaLedger(doc, 'control');
    mock.on(UpdateCommand).rejectsOnce(ccf()).resolves({});
    mock.on(GetCommand).resolves({ Item: { pk: 'quota#5', usedMb: 100 } });
    expect(await quota.reserve(5, 1, 100, 1000)).toEqual({ ok: true });
  });

  it('a size above the limit is refused without a write', async () => {
    const quota = new DynamoQuotaLedger(doc, 'control');
    mock.on(GetCommand).resolves({});
    expect(await quota.reserve(5, 1, 2000, 1000)).toEqual({ ok: false, usedMb: 0 });
    expect(mock.commandCalls(UpdateCommand)).toHaveLength(0);
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
    expect(input.AttributeDefinitions.map((a) => a.AttributeName).sort()).toEqual(['id', 'userId', 'vmId']);
    expect(input.GlobalSecondaryIndexes?.map((g) => g.IndexName)).toEqual(['byId', 'byVm']);
  });
});
