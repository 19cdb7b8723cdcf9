/**
 * The settings every function reads from its environment, in one place. The CDK
 * stack sets these variables (infra/), the local stack sets them for itself (local/).
 */
import { PATTERNS } from '../../adapters/ssm/patterns';
import { DEFAULT_STORAGE, type StorageLocation } from '../../application/storageChoice';
import { DEFAULT_MAX_DISKS_PER_VM } from '../../domain/devices';

/**
 * Attempts per DynamoDB call (the first try and its retries, with the SDK's backoff), the
 * same for the deployed functions and the local stack, so local runs and the fault tests
 * see the retry budget production has.
 */
export const DYNAMODB_MAX_ATTEMPTS = 5;

/** How often the reconciler runs: the schedule on AWS (infra) and locally (local/stack.ts). */
export const RECONCILE_EVERY_MINUTES = 5;

/** Powertools service name (logs, metrics dimension, trace annotation); the local stack sets its own. */
export const SERVICE_NAME = 'cc1-storage-images';
/** The one CloudWatch namespace of the service's metrics: the code, the stack's env and its alarms use this. */
export const METRICS_NAMESPACE = 'Cc1StorageImages';

export const ENV = {
  /** Prefix of every table name: `<prefix>-events`, `<prefix>-control`, `<prefix>-images-v<N>`. */
  tablePrefix: 'TABLE_PREFIX',
  /** The JWT claim holding the CC1 user id (default `sub`). */
  userIdClaim: 'USER_ID_CLAIM',
  defaultQuotaMb: 'DEFAULT_QUOTA_MB',
  maxDisksPerVm: 'MAX_DISKS_PER_VM',
  hostCommandTimeoutMs: 'HOST_COMMAND_TIMEOUT_MS',
  /** How often a running host command is polled (GetCommandInvocation). */
  hostCommandPollMs: 'HOST_COMMAND_POLL_MS',
  /** Shared storage path as the hosts see it; files are `<path>/<user id>/<image id>`. */
  storagePath: 'STORAGE_PATH',
  /** SSM managed instance id of the storage host that makes and removes disk files. */
  storageHostId: 'STORAGE_HOST_ID',
  /**
   * JSON list of storages `[{"id":"a","path":"/srv/a","hostId":"mi-…"}, …]`; new disks go
   * to the emptiest. Unset: one storage `default` made of STORAGE_PATH and STORAGE_HOST_ID.
   */
  storages: 'STORAGES',
  /** JSON map of logical document name -> SSM document name, e.g. {"CC1-AttachDisk":"Cc1-AttachDisk-abc"}. */
  ssmDocumentNames: 'SSM_DOCUMENT_NAMES',
  /** Where SSM is served; set only by the local stack (the local Run Command endpoint). */
  ssmEndpoint: 'SSM_ENDPOINT',
  /** Where DynamoDB is served; set only by the local stack (dynalite). */
  dynamodbEndpoint: 'DYNAMODB_ENDPOINT',
} as const;

export interface RuntimeConfig {
  tablePrefix: string;
  userIdClaim: string;
  defaultQuotaMb: number;
  maxDisksPerVm: number;
  hostCommandTimeoutMs: number;
  hostCommandPollMs: number;
  storagePath: string;
  storageHostId: string;
  /**
   * The storages, in configuration order (STORAGES); absent: the one of storagePath and
   * storageHostId (read them with storagesOf, so an override of those two counts).
   */
  storages?: StorageLocation[];
  ssmDocumentNames: Record<string, string>;
  ssmEndpoint?: string;
  dynamodbEndpoint?: string;
}

const positiveInt = (env: NodeJS.ProcessEnv, name: string, fallback: number): number => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not "${raw}"`);
  return n;
};

const STORAGE_ID = /^[a-z0-9-]{1,32}$/;

/** The storages of a configuration: STORAGES, else the single `default` one of storagePath / storageHostId. */
export const storagesOf = (config: Pick<RuntimeConfig, 'storages' | 'storagePath' | 'storageHostId'>): StorageLocation[] =>
  config.storages?.length ? config.storages : [{ id: DEFAULT_STORAGE, path: config.storagePath, hostId: config.storageHostId }];

/** Parses and checks STORAGES (undefined when unset). */
export const parseStorages = (raw: string | undefined): StorageLocation[] | undefined => {
  if (raw === undefined || raw.trim() === '') return undefined;
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    throw new Error(`${ENV.storages} is not valid JSON`);
  }
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${ENV.storages} must be a non-empty JSON list of {id, path, hostId}`);
  const file = new RegExp(PATTERNS.file);
  const seen = new Set<string>();
  return list.map((item: unknown, i) => {
    const { id, path, hostId } = (item ?? {}) as Record<string, unknown>;
    if (typeof id !== 'string' || !STORAGE_ID.test(id)) throw new Error(`${ENV.storages}[${i}].id must match ${STORAGE_ID.source}`);
    if (seen.has(id)) throw new Error(`${ENV.storages}: storage id "${id}" appears twice`);
    seen.add(id);
    if (typeof path !== 'string' || !file.test(path)) throw new Error(`${ENV.storages}[${i}].path must be an absolute path (${PATTERNS.file})`);
    if (typeof hostId !== 'string') throw new Error(`${ENV.storages}[${i}].hostId must be a string`);
    return { id, path, hostId };
  });
};

export const readConfig = (env: NodeJS.ProcessEnv = process.env): RuntimeConfig => ({
  tablePrefix: env[ENV.tablePrefix] || 'cc1',
  userIdClaim: env[ENV.userIdClaim] || 'sub',
  defaultQuotaMb: positiveInt(env, ENV.defaultQuotaMb, 100_000),
  maxDisksPerVm: positiveInt(env, ENV.maxDisksPerVm, DEFAULT_MAX_DISKS_PER_VM),
  hostCommandTimeoutMs: positiveInt(env, ENV.hostCommandTimeoutMs, 30_000),
  hostCommandPollMs: positiveInt(env, ENV.hostCommandPollMs, 500),
  storagePath: env[ENV.storagePath] || '/var/lib/cc1/storage',
  storageHostId: env[ENV.storageHostId] || '',
  storages: parseStorages(env[ENV.storages]),
  ssmDocumentNames: env[ENV.ssmDocumentNames] ? (JSON.parse(env[ENV.ssmDocumentNames]!) as Record<string, string>) : {},
  ssmEndpoint: env[ENV.ssmEndpoint] || undefined,
  dynamodbEndpoint: env[ENV.dynamodbEndpoint] || undefined,
});
