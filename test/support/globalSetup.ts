/**
 * One DynamoDB Local for the whole jest run (it takes seconds to start and holds a few
 * hundred MB): every test file reuses it through CC1_DYNAMODB_ENDPOINT, each with its own
 * table prefix. Stopped by globalTeardown.ts.
 */
import { SHARED_ENDPOINT_ENV, startDynamoServer, type DynamoServer } from '../../local/dynamo';

declare global {
  // eslint-disable-next-line no-var
  var __cc1DynamoServer: DynamoServer | undefined;
}

export default async (): Promise<void> => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  if (process.env[SHARED_ENDPOINT_ENV]) return; // one given from outside
  const server = await startDynamoServer({ heapMb: 512 });
  globalThis.__cc1DynamoServer = server;
  process.env[SHARED_ENDPOINT_ENV] = server.endpoint;
};
