/**
 * Powertools idempotency records live in the control table (pk `pk`, TTL `expiration`).
 * Powertools' conditional PutItem works on dynalite too; dynalite ignores
 * ReturnValuesOnConditionCheckFailure, and Powertools then reads the record itself.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';

export const IDEMPOTENCY_KEY_ATTR = 'pk';
export const IDEMPOTENCY_EXPIRY_ATTR = 'expiration';

export const idempotencyPersistence = (client: DynamoDBClient, controlTableName: string): DynamoDBPersistenceLayer =>
  new DynamoDBPersistenceLayer({
    tableName: controlTableName,
    keyAttr: IDEMPOTENCY_KEY_ATTR,
    expiryAttr: IDEMPOTENCY_EXPIRY_ATTR,
    awsSdkV3Client: client,
  });
