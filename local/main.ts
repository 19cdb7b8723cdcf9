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
  const stack = await startLocalStack({ dataDir, port, log: (line) => process.env.CC1_VERBOSE && console.error(line) });
  const secret = process.env.LOCAL_JWT_SECRET ? 'LOCAL_JWT_SECRET' : `the default LOCAL_JWT_SECRET ("${DEFAULT_LOCAL_JWT_SECRET}")`;
  console.log(`CC1 Storage Images, local mode. Data: ${dataDir}`);
  console.log(stack.hypervisor.sentence);
  console.log(`Tokens are HS256 JWTs signed with ${secret}: npm run token -- --user 42 [--admin] [--portal]`);
  console.log(`VM events: POST ${stack.url}/_local/events {"Entries":[{"Source":"cc1.hypervisor","DetailType":"VM State Change","Detail":"{...}"}]}`);
  console.log(`listening on ${stack.url}`);
  const stop = async () => {
    await stack.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
};

main().catch((error) => {
  console.error('npm start failed:', error instanceof Error ? error.message : error);
  process.exit(1);
});
