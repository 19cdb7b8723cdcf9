/**
 * Every function is wrapped in the same observability middlewares
 * (functions/shared/observability.ts): its first invocation publishes a ColdStart
 * metric named after the Lambda context, in the one namespace the stack deploys; and
 * outside Lambda the Tracer is off, leaving the SDK clients as they are.
 */
import type { Context } from 'aws-lambda';

const FUNCTIONS = ['restApi', 'cc1Api', 'vmEvents', 'projector', 'diskFiles', 'reconciler'] as const;

const contextFor = (name: string) =>
  ({ functionName: name, functionVersion: '$LATEST', awsRequestId: 'req-1', memoryLimitInMB: '256', invokedFunctionArn: `arn:aws:lambda:eu-west-1:1:function:${name}`, getRemainingTimeInMillis: () => 10_000 }) as unknown as Context;

const sampleEvent = (name: string): unknown =>
  name === 'restApi' || name === 'cc1Api'
    ? {
        version: '2.0',
        rawPath: '/disk-controllers',
        headers: {},
        requestContext: { http: { method: 'GET', path: name === 'restApi' ? '/disk-controllers' : '/user/storage_image/get_disk_controllers' }, authorizer: { jwt: { claims: { sub: '42' } } } },
      }
    : name === 'projector' || name === 'diskFiles'
      ? { Records: [{ eventName: 'INSERT', dynamodb: { NewImage: {} } }] }
      : { id: 'evt-1', source: 'cc1.hypervisor', 'detail-type': 'VM State Change', detail: {} };

/** Loads a handler in a fresh module registry with metrics on, and returns the EMF documents its first invocation wrote. */
const emfOfFirstInvocation = async (name: string): Promise<Array<Record<string, any>>> => {
  const written: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    written.push(String(chunk));
    return true;
  });
  const env = { ...process.env };
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand'; // as Lambda sets it: Powertools counts cold starts only then
  try {
    await jest.isolateModulesAsync(async () => {
      const { buildContainer, useContainer } = await import('../../functions/shared/container');
      const { readConfig } = await import('../../functions/shared/config');
      const real = buildContainer(readConfig({}));
      // Deps that refuse: these tests are about the wrapping, not the work.
      useContainer({ ...real, deps: new Proxy({}, { get: () => { throw new Error('no deps here'); } }) as typeof real.deps });
      const { handler } = (await import(`../../functions/${name}/handler`)) as { handler: (e: unknown, c: Context) => Promise<unknown> };
      await handler(sampleEvent(name), contextFor(name)).catch(() => undefined);
    });
  } finally {
    process.env = env;
    write.mockRestore();
  }
  return written.flatMap((chunk) => chunk.split('\n')).filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line));
};

test.each(FUNCTIONS)('%s publishes a ColdStart metric (logMetrics with the Lambda context) in the Cc1StorageImages namespace', async (name) => {
  const documents = await emfOfFirstInvocation(name);
  const coldStart = documents.find((d) => d._aws.CloudWatchMetrics[0].Metrics.some((m: { Name: string }) => m.Name === 'ColdStart'));
  expect(coldStart).toBeDefined();
  expect(coldStart!._aws.CloudWatchMetrics[0].Namespace).toBe('Cc1StorageImages');
  expect(coldStart!.function_name).toBe(name);
});

test('outside Lambda the Tracer is off and the SDK clients are left as they are', async () => {
  const { tracer } = await import('../../functions/shared/observability');
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  expect(tracer.isTracingEnabled()).toBe(false);
  const client = new DynamoDBClient({ region: 'eu-west-1' });
  const before = client.middlewareStack.identify();
  expect(tracer.captureAWSv3Client(client).middlewareStack.identify()).toEqual(before);
});
