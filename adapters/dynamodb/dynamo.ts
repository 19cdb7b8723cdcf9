/** Small shared helpers of the DynamoDB adapters. */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DomainError } from '../../domain/errors';

/** A document client with the marshalling options every adapter here relies on. */
export const documentClient = (client: DynamoDBClient): DynamoDBDocumentClient =>
  DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
    unmarshallOptions: { wrapNumbers: false },
  });

/** The condition of a conditional write did not hold (on AWS and on dynalite alike). */
export const isConditionFailed = (e: unknown): boolean => (e as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException';

export type Key = Record<string, unknown>;

/** Opaque page token: the LastEvaluatedKey as base64url JSON. */
export const encodeToken = (key: Key | undefined): string | undefined =>
  key ? Buffer.from(JSON.stringify(key), 'utf8').toString('base64url') : undefined;

/** A bad `nextToken` is bad input: a DomainError `validation` (HTTP 400). */
export class InvalidPageTokenError extends DomainError {
  constructor() {
    super('validation', 'nextToken is not valid here.');
    this.name = 'InvalidPageTokenError';
  }
}

/**
 * Decodes a token and checks it has exactly the expected key attributes: numbers, but
 * for the ones named in `stringKeys` (an index keyed on a state name).
 */
export const decodeToken = (token: string | undefined, keyNames: readonly string[], stringKeys: readonly string[] = []): Key | undefined => {
  if (token === undefined || token === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidPageTokenError();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidPageTokenError();
  const entries = Object.entries(parsed);
  if (entries.length !== keyNames.length) throw new InvalidPageTokenError();
  for (const [k, v] of entries) {
    if (!keyNames.includes(k)) throw new InvalidPageTokenError();
    const fits = stringKeys.includes(k) ? typeof v === 'string' && v.length <= 64 : typeof v === 'number' && Number.isSafeInteger(v);
    if (!fits) throw new InvalidPageTokenError();
  }
  return parsed as Key;
};
