/**
 * Which errors are a dependency's outage (503 with Retry-After) and which are ours (500):
 * the DynamoDB client's own exception types, as a mocked client throws them
 * (aws-sdk-client-mock: unit tests of error paths only).
 */
import { DynamoDBClient, GetItemCommand, ProvisionedThroughputExceededException, InternalServerError, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { errorReply } from '../../functions/shared/http';
import { isDependencyUnavailable } from '../../functions/shared/unavailable';

const logger = new Logger({ logLevel: 'SILENT' });
const client = new DynamoDBClient({ region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
const mock = mockClient(client);
const failureOf = async (error: Error) => {
  mock.reset();
  mock.on(GetItemCommand).rejects(error);
  return client.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'k' } } })).then(
    () => undefined,
    (e: unknown) => e,
  );
};

test('throttling and server faults of DynamoDB are 503 service_unavailable with Retry-After', async () => {
  for (const error of [
    new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} }),
    new InternalServerError({ message: 'oops', $metadata: {} }),
  ]) {
    const reply = errorReply(await failureOf(error), logger);
    expect({ name: error.name, status: reply.statusCode, retryAfter: reply.headers?.['retry-after'], code: JSON.parse(String(reply.body)).error.code }).toEqual({
      name: error.name,
      status: 503,
      retryAfter: '2',
      code: 'service_unavailable',
    });
  }
});

test('an outage wrapped by the idempotency layer (its error with the SDK error as cause) is an outage too', async () => {
  const sdk = await failureOf(new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} }));
  const wrapped = Object.assign(new Error('Failed to save in progress record to idempotency store'), { name: 'IdempotencyPersistenceLayerError', cause: sdk });
  expect(isDependencyUnavailable(wrapped)).toBe(true);
});

test('a client-side error of the service (a missing table: our bug) is not an outage: 500', async () => {
  const error = await failureOf(new ResourceNotFoundException({ message: 'no table', $metadata: {} }));
  expect(isDependencyUnavailable(error)).toBe(false);
  expect(errorReply(error, logger).statusCode).toBe(500);
  expect(isDependencyUnavailable(new TypeError('x is undefined'))).toBe(false);
});
