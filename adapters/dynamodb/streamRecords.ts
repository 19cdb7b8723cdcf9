/**
 * DynamoDB Streams records as Lambda hands them over: GetRecords returns SDK shapes
 * (Date, Uint8Array), Lambda's DynamoDBStreamEvent carries JSON (epoch seconds, base64).
 * The local event source mapping and the dead-letter redrive both read the Streams API
 * and feed the same handlers, so both convert here.
 */
import type { AttributeValue, _Record as StreamsRecord } from '@aws-sdk/client-dynamodb-streams';
import type { AttributeValue as LambdaAttributeValue, DynamoDBRecord } from 'aws-lambda';

const lambdaValue = (v: AttributeValue): LambdaAttributeValue => {
  // DynamoDB Local 3.3.1 writes an empty map as `{}` in stream images (GetItem, and AWS, give {"M":{}}).
  if (Object.values(v).every((x) => x === undefined)) return { M: {} };
  if (v.B) return { B: Buffer.from(v.B).toString('base64') };
  if (v.BS) return { BS: v.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (v.M) return { M: lambdaImage(v.M) };
  if (v.L) return { L: v.L.map(lambdaValue) };
  return v as LambdaAttributeValue;
};
const lambdaImage = (image: Record<string, AttributeValue>): Record<string, LambdaAttributeValue> =>
  Object.fromEntries(Object.entries(image).map(([k, v]) => [k, lambdaValue(v)]));

export const toLambdaRecord = (r: StreamsRecord, streamArn: string): DynamoDBRecord => {
  const d = r.dynamodb ?? {};
  return {
    eventID: r.eventID,
    eventName: r.eventName as DynamoDBRecord['eventName'],
    eventVersion: r.eventVersion,
    eventSource: r.eventSource,
    awsRegion: r.awsRegion,
    eventSourceARN: streamArn,
    dynamodb: {
      ...(d.ApproximateCreationDateTime ? { ApproximateCreationDateTime: Math.floor(d.ApproximateCreationDateTime.getTime() / 1000) } : {}),
      ...(d.Keys ? { Keys: lambdaImage(d.Keys) } : {}),
      ...(d.NewImage ? { NewImage: lambdaImage(d.NewImage) } : {}),
      ...(d.OldImage ? { OldImage: lambdaImage(d.OldImage) } : {}),
      SequenceNumber: d.SequenceNumber,
      SizeBytes: d.SizeBytes,
      StreamViewType: d.StreamViewType as NonNullable<DynamoDBRecord['dynamodb']>['StreamViewType'],
    },
  };
};
