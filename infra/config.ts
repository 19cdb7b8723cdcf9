/**
 * Deployment settings, read from CDK context (`cdk deploy -c key=value`, or the
 * `context` block of cdk.json) and checked before anything is built. Every key is
 * documented in docs/deploy.md; the defaults make `npx cdk synth` work offline on a
 * clean clone.
 */
import { DEFAULT_MAX_DISKS_PER_VM } from '../domain/devices';
import { PATTERNS } from '../adapters/ssm/patterns';
import type { StorageLocation } from '../application/storageChoice';
import { parseStorages } from '../functions/shared/config';

export interface DeployConfig {
  /** Prefix of every table name: `<prefix>-events`, `<prefix>-control`, `<prefix>-images-v<N>`. */
  tablePrefix: string;
  /** Generations of the images read model to deploy, e.g. [1] or [1, 2] during a rebuild. */
  imagesTableVersions: number[];
  storagePath: string;
  /** SSM managed instance id (`i-…` / `mi-…`) of the storage host; '' = not connected yet. */
  storageHostId: string;
  /** Several storages (new disks go to the emptiest); empty = the one of storagePath and storageHostId. */
  storages: StorageLocation[];
  defaultQuotaMb: number;
  maxDisksPerVm: number;
  hostCommandTimeoutMs: number;
  /** How often a running host command is polled (GetCommandInvocation). */
  hostCommandPollMs: number;
  /** JWT claim holding the CC1 user id; undefined = `custom:cc1_user_id` with the built-in pool, `sub` otherwise. */
  userIdClaim: string;
  hostTagKey: string;
  hostTagValues: string[];
  /** An existing OIDC issuer; undefined = a Cognito user pool is created. */
  jwtIssuer?: string;
  jwtAudience: string[];
  eventBusName: string;
  alarmEmail?: string;
  /** X-Ray active tracing on every function (Powertools Tracer); on unless `-c xrayTracing=false`. */
  xrayTracing: boolean;
  apiRateLimit: number;
  apiBurstLimit: number;
  /** Alarm when the projector is this far behind the event log. */
  projectionLagAlarmSeconds: number;
  /** Alarm when diskFiles is this far behind the event log (it makes big files: minutes each). */
  diskFilesLagAlarmSeconds: number;
  /** Alarm when changeNotifications is this far behind the event log (portals then learn of changes late). */
  changeNotificationsLagAlarmSeconds: number;
  /** Alarm when more than this percentage of hot attaches (or detaches) fail in 15 minutes. */
  attachFailurePercentAlarm: number;
  detachFailurePercentAlarm: number;
  /** Alarm when the reconciler repairs at least this many things in an hour. */
  reconcilerRepairsAlarm: number;
  /** Days the VM events archive keeps events for a replay (0: for ever). */
  vmEventsArchiveDays: number;
  /** Browser origins allowed to call the API (CORS); empty = no CORS (server-side portals). */
  corsAllowOrigins: string[];
}

/** The claim the built-in Cognito pool puts the CC1 user id in (an immutable custom attribute). */
export const COGNITO_USER_ID_CLAIM = 'custom:cc1_user_id';

/** Context keys, in the order docs/deploy.md lists them. */
export const CONTEXT_KEYS = [
  'tablePrefix',
  'imagesTableVersions',
  'storagePath',
  'storageHostId',
  'storages',
  'defaultQuotaMb',
  'maxDisksPerVm',
  'hostCommandTimeoutMs',
  'hostCommandPollMs',
  'userIdClaim',
  'hostTagKey',
  'hostTagValues',
  'jwtIssuer',
  'jwtAudience',
  'eventBusName',
  'alarmEmail',
  'xrayTracing',
  'apiRateLimit',
  'apiBurstLimit',
  'projectionLagAlarmSeconds',
  'diskFilesLagAlarmSeconds',
  'changeNotificationsLagAlarmSeconds',
  'attachFailurePercentAlarm',
  'detachFailurePercentAlarm',
  'reconcilerRepairsAlarm',
  'vmEventsArchiveDays',
  'corsAllowOrigins',
] as const;
export type ContextKey = (typeof CONTEXT_KEYS)[number];

/** Fixed names, so the ops CLI finds the VM events archive and the rule to replay into from the bus name alone. */
export const vmEventsArchiveName = (eventBusName: string): string => `${eventBusName}-archive`.slice(0, 48);
export const vmStateChangeRuleName = (eventBusName: string): string => `${eventBusName}-vm-state-change`.slice(0, 64);

export class DeployConfigError extends Error {
  constructor(key: ContextKey, message: string) {
    super(`context "${key}": ${message}`);
    this.name = 'DeployConfigError';
  }
}

type Lookup = (key: ContextKey) => unknown;

const str = (get: Lookup, key: ContextKey, fallback: string, pattern?: RegExp): string => {
  const raw = get(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  const value = String(raw).trim();
  if (pattern && !pattern.test(value)) throw new DeployConfigError(key, `"${value}" does not match ${pattern}`);
  return value;
};

const optionalStr = (get: Lookup, key: ContextKey, pattern: RegExp): string | undefined => {
  const value = str(get, key, '', pattern);
  return value === '' ? undefined : value;
};

const int = (get: Lookup, key: ContextKey, fallback: number, min: number, max: number): number => {
  const raw = get(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new DeployConfigError(key, `must be an integer in ${min}..${max}, not "${String(raw)}"`);
  return n;
};

/** A list from `a,b` (CLI) or ["a","b"] (cdk.json). */
const list = (get: Lookup, key: ContextKey, fallback: string[]): string[] => {
  const raw = get(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  const items = (Array.isArray(raw) ? raw.map(String) : String(raw).split(',')).map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new DeployConfigError(key, 'must not be empty');
  return items;
};

const bool = (get: Lookup, key: ContextKey, fallback: boolean): boolean => {
  const raw = get(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new DeployConfigError(key, `must be true or false, not "${String(raw)}"`);
};

const TAG = /^[A-Za-z0-9_.:/=+@-]{1,128}$/;
const HOST_ID = new RegExp(PATTERNS.managedInstanceId);

/** A JSON list `[{"id","path","hostId"}, …]` (CLI) or the list itself (cdk.json); the same checks as STORAGES. */
const storagesContext = (get: Lookup): StorageLocation[] => {
  const raw = get('storages');
  if (raw === undefined || raw === null || raw === '') return [];
  let storages: StorageLocation[];
  try {
    storages = parseStorages(typeof raw === 'string' ? raw : JSON.stringify(raw)) ?? [];
  } catch (error) {
    throw new DeployConfigError('storages', (error as Error).message);
  }
  for (const s of storages) if (!HOST_ID.test(s.hostId)) throw new DeployConfigError('storages', `hostId "${s.hostId}" of "${s.id}" does not match ${HOST_ID}`);
  return storages;
};

/** Reads and checks the deployment settings; `get` is usually `(k) => node.tryGetContext(k)`. */
export const readDeployConfig = (get: Lookup): DeployConfig => {
  const jwtIssuer = optionalStr(get, 'jwtIssuer', /^https:\/\/[^\s]+$/);
  const jwtAudience = list(get, 'jwtAudience', []);
  if (jwtIssuer && jwtAudience.length === 0) throw new DeployConfigError('jwtAudience', 'is required with jwtIssuer');
  if (!jwtIssuer && jwtAudience.length > 0) throw new DeployConfigError('jwtAudience', 'only makes sense with jwtIssuer');

  const versions = list(get, 'imagesTableVersions', ['1']).map((v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new DeployConfigError('imagesTableVersions', `"${v}" is not a generation number`);
    return n;
  });
  const imagesTableVersions = [...new Set(versions)].sort((a, b) => a - b);
  if (imagesTableVersions.length > 2) {
    throw new DeployConfigError('imagesTableVersions', 'at most two generations (the one in use and the one being rebuilt)');
  }

  const hostTagValues = list(get, 'hostTagValues', ['hypervisor', 'storage']);
  for (const v of hostTagValues) if (!TAG.test(v)) throw new DeployConfigError('hostTagValues', `"${v}" is not a valid tag value`);

  return {
    tablePrefix: str(get, 'tablePrefix', 'cc1', /^[A-Za-z0-9_.-]{1,40}$/),
    imagesTableVersions,
    storagePath: str(get, 'storagePath', '/var/lib/cc1/storage', new RegExp(PATTERNS.file)),
    storageHostId: str(get, 'storageHostId', '', HOST_ID),
    storages: storagesContext(get),
    defaultQuotaMb: int(get, 'defaultQuotaMb', 100_000, 1, 1_000_000_000),
    maxDisksPerVm: int(get, 'maxDisksPerVm', DEFAULT_MAX_DISKS_PER_VM, 1, 24),
    // API Gateway stops waiting at 30 s: a hypervisor command must end well before.
    hostCommandTimeoutMs: int(get, 'hostCommandTimeoutMs', 20_000, 1_000, 25_000),
    // GetCommandInvocation is throttled per account: do not poll faster than this.
    hostCommandPollMs: int(get, 'hostCommandPollMs', 500, 100, 5_000),
    userIdClaim: str(get, 'userIdClaim', jwtIssuer ? 'sub' : COGNITO_USER_ID_CLAIM, /^[A-Za-z0-9_:./-]{1,100}$/),
    hostTagKey: str(get, 'hostTagKey', 'cc1-role', TAG),
    hostTagValues,
    jwtIssuer,
    jwtAudience,
    eventBusName: str(get, 'eventBusName', 'cc1-hypervisor', /^[A-Za-z0-9._-]{1,256}$/),
    alarmEmail: optionalStr(get, 'alarmEmail', /^[^\s@]+@[^\s@]+$/),
    xrayTracing: bool(get, 'xrayTracing', true),
    apiRateLimit: int(get, 'apiRateLimit', 50, 1, 10_000),
    apiBurstLimit: int(get, 'apiBurstLimit', 100, 1, 5_000),
    projectionLagAlarmSeconds: int(get, 'projectionLagAlarmSeconds', 60, 1, 86_400),
    diskFilesLagAlarmSeconds: int(get, 'diskFilesLagAlarmSeconds', 1_800, 60, 86_400),
    changeNotificationsLagAlarmSeconds: int(get, 'changeNotificationsLagAlarmSeconds', 300, 1, 86_400),
    attachFailurePercentAlarm: int(get, 'attachFailurePercentAlarm', 20, 1, 100),
    detachFailurePercentAlarm: int(get, 'detachFailurePercentAlarm', 20, 1, 100),
    reconcilerRepairsAlarm: int(get, 'reconcilerRepairsAlarm', 5, 1, 10_000),
    vmEventsArchiveDays: int(get, 'vmEventsArchiveDays', 30, 0, 3_650),
    corsAllowOrigins: (get('corsAllowOrigins') === undefined ? [] : list(get, 'corsAllowOrigins', [])).map((origin) => {
      if (!/^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(origin)) throw new DeployConfigError('corsAllowOrigins', `"${origin}" is not an https origin`);
      return origin;
    }),
  };
};
