/**
 * The composition root: builds the adapters from the runtime configuration, once
 * per Lambda container (or once per local process). Handlers ask for it lazily so
 * a cold start only pays for what the first request uses.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import { Logger } from '@aws-lambda-powertools/logger';
import { search } from '@aws-lambda-powertools/logger/correlationId';
import type { Hypervisor, StorageHost } from '../../application/ports';
import { diskFilePath } from '../../application/storageChoice';
import type { ServiceDeps } from '../../application/storageImages';
import type { ReconcilerCursor } from '../../application/storePorts';
import { documentClient } from '../../adapters/dynamodb/dynamo';
import { DynamoEventStore } from '../../adapters/dynamodb/eventStore';
import { idempotencyPersistence } from '../../adapters/dynamodb/idempotency';
import { DynamoIdAllocator } from '../../adapters/dynamodb/idAllocator';
import { DynamoQuotaLedger } from '../../adapters/dynamodb/quotaLedger';
import { DynamoImageReadModel, ReadModelLocator } from '../../adapters/dynamodb/readModel';
import { DynamoReconcilerCursor } from '../../adapters/dynamodb/reconcilerCursor';
import { tableNames } from '../../adapters/dynamodb/tables';
import { DynamoVmDirectory } from '../../adapters/dynamodb/vmDirectory';
import { DYNAMODB_MAX_ATTEMPTS, readConfig, storagesOf, type RuntimeConfig } from './config';
import { correlatedLogger, currentCorrelationId } from './correlation';
import { metricsPort } from './metrics';
import { tracer } from './observability';

export interface Container {
  config: RuntimeConfig;
  deps: ServiceDeps;
  dynamo: DynamoDBClient;
  readModelLocator: ReadModelLocator;
  /** Where the reconciler's runs resume (a control item). */
  reconcilerCursor: ReconcilerCursor;
  idempotencyStore: () => BasePersistenceLayer;
}

export const serviceLogger = (): Logger =>
  new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'cc1-storage-images', correlationIdSearchFn: search });

/** Endpoints given: the local stack, with fixed dummy credentials (nothing to sign for). */
export const localOptions = (endpoint: string | undefined) =>
  endpoint ? { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {};

/** How this function reaches the hosts; functions that never do keep the default. */
export interface Hosts {
  hypervisor: Hypervisor;
  storage: StorageHost;
}

/** Hosts that refuse every command: for code that only writes records (`who` names it in the error). */
export const noHostsHere = (config: RuntimeConfig, who = 'this function'): Hosts => {
  const refuse = async (): Promise<never> => {
    throw new Error(`${who} has no access to the hosts`);
  };
  const storages = storagesOf(config);
  return {
    hypervisor: { attachDisk: refuse, detachDisk: refuse, listDisks: refuse, resizeDisk: refuse },
    storage: {
      storageIds: storages.map((s) => s.id),
      freeSpaceMb: refuse,
      mkfsTools: refuse,
      createDiskFile: refuse,
      deleteDiskFile: refuse,
      resizeDiskFile: refuse,
      pathOf: (ref) => diskFilePath(storages, ref),
    },
  };
};

export const buildContainer = (
  config: RuntimeConfig,
  overrides: { dynamo?: DynamoDBClient; hosts?: (config: RuntimeConfig) => Hosts; logger?: Logger } = {},
): Container => {
  const logger = overrides.logger ?? serviceLogger();
  const dynamo = overrides.dynamo ?? tracer.captureAWSv3Client(new DynamoDBClient({ ...localOptions(config.dynamodbEndpoint), maxAttempts: DYNAMODB_MAX_ATTEMPTS }));
  const doc = documentClient(dynamo);
  const names = tableNames(config.tablePrefix);
  const readModelLocator = new ReadModelLocator(doc, names.control, config.tablePrefix);
  const { hypervisor, storage } = (overrides.hosts ?? hostsFactory)(config);

  const deps: ServiceDeps = {
    events: new DynamoEventStore(doc, names.events, names.control, readModelLocator, currentCorrelationId),
    readModel: new DynamoImageReadModel(doc, readModelLocator),
    vms: new DynamoVmDirectory(doc, names.control),
    quota: new DynamoQuotaLedger(doc, names.control),
    ids: new DynamoIdAllocator(doc, names.control),
    hypervisor,
    storage,
    config: { defaultQuotaMb: config.defaultQuotaMb, maxDisksPerVm: config.maxDisksPerVm },
    logger: correlatedLogger(logger),
    metrics: metricsPort(),
  };
  return {
    config,
    deps,
    dynamo,
    readModelLocator,
    reconcilerCursor: new DynamoReconcilerCursor(doc, names.control),
    idempotencyStore: () => idempotencyPersistence(dynamo, names.control),
  };
};

let hostsFactory: (config: RuntimeConfig) => Hosts = noHostsHere;

/** A function that talks to hosts registers how, once, when its module loads. */
export const useHosts = (factory: (config: RuntimeConfig) => Hosts): void => {
  hostsFactory = factory;
};

let current: Container | undefined;

/** The process's container, from the environment. */
export const container = (): Container => (current ??= buildContainer(readConfig()));

/** For the local stack and tests: use this container in every handler of the process. */
export const useContainer = (c: Container | undefined): void => {
  current = c;
};
