/**
 * The settings every function reads from its environment, in one place. The CDK
 * stack sets these variables (infra/), the local stack sets them for itself (local/).
 */
import { DEFAULT_MAX_DISKS_PER_VM } from '../../domain/devices';

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

export const readConfig = (env: NodeJS.ProcessEnv = process.env): RuntimeConfig => ({
  tablePrefix: env[ENV.tablePrefix] || 'cc1',
  userIdClaim: env[ENV.userIdClaim] || 'sub',
  defaultQuotaMb: positiveInt(env, ENV.defaultQuotaMb, 100_000),
  maxDisksPerVm: positiveInt(env, ENV.maxDisksPerVm, DEFAULT_MAX_DISKS_PER_VM),
  hostCommandTimeoutMs: positiveInt(env, ENV.hostCommandTimeoutMs, 30_000),
  hostCommandPollMs: positiveInt(env, ENV.hostCommandPollMs, 500),
  storagePath: env[ENV.storagePath] || '/var/lib/cc1/storage',
  storageHostId: env[ENV.storageHostId] || '',
  ssmDocumentNames: env[ENV.ssmDocumentNames] ? (JSON.parse(env[ENV.ssmDocumentNames]!) as Record<string, string>) : {},
  ssmEndpoint: env[ENV.ssmEndpoint] || undefined,
  dynamodbEndpoint: env[ENV.dynamodbEndpoint] || undefined,
});
