import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { tableName, type KeyElement, type TableDef } from '../../adapters/dynamodb/tables';

const attributeType: Record<KeyElement['type'], dynamodb.AttributeType> = {
  S: dynamodb.AttributeType.STRING,
  N: dynamodb.AttributeType.NUMBER,
  B: dynamodb.AttributeType.BINARY,
};
const attribute = (k: KeyElement): dynamodb.Attribute => ({ name: k.name, type: attributeType[k.type] });

/**
 * A DynamoDB table from its one definition in adapters/dynamodb/tables.ts (the same
 * data the local server and the read-model rebuild use). Every table keeps its data:
 * point-in-time recovery, deletion protection, retained when the stack goes away,
 * on-demand billing, encrypted at rest with the AWS managed key.
 */
export const tableFromDefinition = (scope: Construct, id: string, prefix: string, def: TableDef): dynamodb.Table => {
  const table = new dynamodb.Table(scope, id, {
    tableName: tableName(prefix, def),
    partitionKey: attribute(def.partitionKey),
    sortKey: def.sortKey ? attribute(def.sortKey) : undefined,
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: true,
    removalPolicy: RemovalPolicy.RETAIN,
    stream: def.stream === 'NEW_IMAGE' ? dynamodb.StreamViewType.NEW_IMAGE : undefined,
    timeToLiveAttribute: def.timeToLiveAttribute,
  });
  for (const gsi of def.globalSecondaryIndexes) {
    table.addGlobalSecondaryIndex({
      indexName: gsi.indexName,
      partitionKey: attribute(gsi.partitionKey),
      sortKey: gsi.sortKey ? attribute(gsi.sortKey) : undefined,
      projectionType: gsi.projection === 'ALL' ? dynamodb.ProjectionType.ALL : dynamodb.ProjectionType.KEYS_ONLY,
    });
  }
  return table;
};
