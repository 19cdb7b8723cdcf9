/**
 * The composition root: builds the adapters from the runtime configuration, once
 * per Lambda container (or once per local process). Handlers ask for it lazily so
 * a cold start only pays for what the first request uses.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import { Logger } from '@aws-lambda-powertools/logger';
import { search } from '@aws-lambda-powertools/logger/correlationId';
import type { ServiceDeps } from '../../application/storageImages';
import { documentClient } from '../../adapters/dynamodb/dynamo';
import { DynamoEventStore } from '../../adapters/dynamodb/eventStore';
import { DynamoIdAllocator } from '../../adapters/dynamodb/idAllocator';
import { DynamoQuotaLedger } from '../../adapters/dynamodb/quotaLedger';
import { DynamoImageReadModel, ReadModelLocator } from '../../adapters/dynamodb/readModel';
import { tableNames } from '../../adapters/dynamodb/tables';
import { DynamoVmDirectory } from '../../adapters/dynamodb/vmDirectory';
import { SsmHypervisor, SsmStorageHost } from '../../adapters/ssm/ssmHypervisor';
import type { DocumentKey } from '../../adapters/ssm/documents';
import { readConfig, type RuntimeConfig } from './config';
import { metricsPort } from './metrics';

export interface Container {
  config: RuntimeConfig;
  deps: ServiceDeps;
  dynamo: DynamoDBClient;
  readModelLocator: ReadModelLocator;
  idempotencyStore: () => BasePersistenceLayer;
}

export const serviceLogger = (): Logger =>
  new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'cc1-storage-images', correlationIdSearchFn: search });

/** Endpoints given: the local stack, with fixed dummy credentials (nothing to sign for). */
const localOptions = (endpoint: string | undefined) =>
  endpoint ? { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {};

export const buildContainer = (
  config: RuntimeConfig,
  overrides: { dynamo?: DynamoDBClient; ssm?: SSMClient; logger?: Logger } = {},
): Container => {
  const logger = overrides.logger ?? serviceLogger();
  const dynamo = overrides.dynamo ?? new DynamoDBClient({ ...localOptions(config.dynamodbEndpoint), maxAttempts: 5 });
  const doc = documentClient(dynamo);
  const names = tableNames(config.tablePrefix);
  const readModelLocator = new ReadModelLocator(doc, names.control, config.tablePrefix);
  let ssm = overrides.ssm;
  const ssmClient = (): SSMClient => (ssm ??= new SSMClient({ ...localOptions(config.ssmEndpoint) }));
  const documentNames = config.ssmDocumentNames as Partial<Record<DocumentKey, string>>;
  const timeoutMs = config.hostCommandTimeoutMs;
  const pollIntervalMs = config.hostCommandPollMs;

  // The SSM client is made on first use: most requests never reach a host.
  let hypervisor: SsmHypervisor | undefined;
  const host = (): SsmHypervisor => (hypervisor ??= new SsmHypervisor({ client: ssmClient(), documentNames, timeoutMs, pollIntervalMs }));
  const storage = new LazyStorageHost(config.storagePath, () =>
    new SsmStorageHost({ client: ssmClient(), documentNames, timeoutMs, pollIntervalMs, storageHostId: config.storageHostId, storagePath: config.storagePath }),
  );

  const deps: ServiceDeps = {
    events: new DynamoEventStore(doc, names.events),
    readModel: new DynamoImageReadModel(doc, readModelLocator),
    vms: new DynamoVmDirectory(doc, names.control),
    quota: new DynamoQuotaLedger(doc, names.control),
    ids: new DynamoIdAllocator(doc, names.control),
    hypervisor: {
      attachDisk: (request) => host().attachDisk(request),
      detachDisk: (request) => host().detachDisk(request),
      listDisks: (target) => host().listDisks(target),
    },
    storage,
    config: { defaultQuotaMb: config.defaultQuotaMb, maxDisksPerVm: config.maxDisksPerVm },
    logger,
    metrics: metricsPort(),
  };
  return {
    config,
    deps,
    dynamo,
    readModelLocator,
    idempotencyStore: () =>
      new DynamoDBPersistenceLayer({ tableName: names.control, keyAttr: 'pk', expiryAttr: 'expiration', awsSdkV3Client: dynamo }),
  };
};

/** `pathOf` needs no client; everything else is made on first use. */
class LazyStorageHost {
  private made: SsmStorageHost | undefined;
  constructor(
    private readonly storagePath: string,
    private readonly make: () => SsmStorageHost,
  ) {}
  private get host(): SsmStorageHost {
    return (this.made ??= this.make());
  }
  createDiskFile: SsmStorageHost['createDiskFile'] = (request) => this.host.createDiskFile(request);
  deleteDiskFile: SsmStorageHost['deleteDiskFile'] = (request) => this.host.deleteDiskFile(request);
  pathOf: SsmStorageHost['pathOf'] = ({ userId, imageId }) => `${this.storagePath}/${userId}/${imageId}`;
}

let current: Container | undefined;

/** The process's container, from the environment. */
export const container = (): Container => (current ??= buildContainer(readConfig()));

/** For the local stack and tests: use this container in every handler of the process. */
export const useContainer = (c: Container | undefined): void => {
  current = c;
};
