/**
 * `npm start`: the whole service locally, data kept in CC1_DATA_DIR (default
 * `.local-data/`). Prints the URL and how to get a token.
 */
import './localDefaults';
import { DEFAULT_LOCAL_JWT_SECRET } from './jwt';
import { checkJava, localDataDir } from './dynamo';
import { startLocalStack } from './stack';

const main = async () => {
  checkJava(); // before anything starts: DynamoDB Local runs on Java 17+
  const dataDir = localDataDir();
  const port = Number(process.env.PORT ?? 3000);
  const stack = await startLocalStack({
    dataDir,
    port,
    log: (line) => (process.env.CC1_VERBOSE || line.startsWith('[dynamodb]')) && console.error(line),
    onFatal: (line) => {
      console.error(`npm start: ${line}`);
      void stack.close().finally(() => process.exit(1));
    },
  });
  const secret = process.env.LOCAL_JWT_SECRET ? 'LOCAL_JWT_SECRET' : `the default LOCAL_JWT_SECRET ("${DEFAULT_LOCAL_JWT_SECRET}")`;
  console.log(`CC1 Storage Images, local mode. Data: ${dataDir}`);
  console.log(stack.hypervisor.sentence);
  console.log(`Tokens are HS256 JWTs signed with ${secret}: npm run token -- --user 42 [--admin] [--portal]`);
  console.log(`VM events: POST ${stack.url}/_local/events {"Entries":[{"Source":"cc1.hypervisor","DetailType":"VM State Change","Detail":"{...}"}]}`);
  console.log(`API page: ${stack.url}/docs (the OpenAPI, browsable)`);
  console.log(`listening on ${stack.url}`);
  // A supervisor's stop: no new connections, requests in flight get CC1_DRAIN_SECONDS (default
  // 10) to answer, then the pollers and the database stop. A second signal stops at once.
  const drainMs = Number(process.env.CC1_DRAIN_SECONDS ?? 10) * 1000;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.error(`${signal}: draining requests in flight (up to ${drainMs / 1000} s), then stopping`);
    await stack.close({ drainMs });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Started by a parent that then died without passing the signal on (npm's sh): stop too.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void stop('parent exited');
  }, 1000).unref();
};

main().catch((error) => {
  console.error('npm start failed:', error instanceof Error ? error.message : error);
  process.exit(1);
});
