import { Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { nagArn } from '../nag';
import type { Cc1Function } from './cc1Function';

const READ = ['dynamodb:GetItem', 'dynamodb:Query'];
/**
 * What each kind of access may do, table by table. Named after the work, not the
 * table: a command appends events, updates control items and writes read-model rows.
 */
const ACTIONS = {
  events: {
    read: READ,
    // Append-only: a conditional Put of the event, nothing that changes or removes one.
    command: [...READ, 'dynamodb:PutItem', 'dynamodb:ConditionCheckItem'],
    commandAndScan: [...READ, 'dynamodb:PutItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Scan'],
  },
  control: {
    read: ['dynamodb:GetItem'],
    // Stream heads, device claims, quota ledgers, id blocks, VM records.
    command: [...READ, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'],
    // Powertools idempotency also deletes the record of a request that failed, so a retry runs again.
    commandWithIdempotency: [...READ, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem', 'dynamodb:DeleteItem'],
    commandAndScan: [...READ, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Scan'],
  },
  images: {
    // Rows are only ever Put (whole, version-guarded); the admin list scans.
    readWrite: [...READ, 'dynamodb:Scan', 'dynamodb:PutItem'],
  },
} as const;

export type DataAccessGrant = { [T in keyof typeof ACTIONS]: keyof (typeof ACTIONS)[T] };

/**
 * Explicit IAM statements instead of `grantReadWriteData` (which would let any writer
 * rewrite or erase the event log). One statement per table and function, with a Sid
 * naming the table, so the template reads as the access list.
 */
export class DataAccess {
  constructor(
    private readonly stack: Stack,
    private readonly tables: { events: dynamodb.ITable; control: dynamodb.ITable; imagesPrefix: string },
  ) {}

  grant(f: Cc1Function, access: DataAccessGrant): void {
    const imagesTables = this.stack.formatArn({ service: 'dynamodb', resource: 'table', resourceName: `${this.tables.imagesPrefix}-images-v*` });
    const statement = (sid: string, actions: readonly string[], resources: string[]) =>
      new iam.PolicyStatement({ sid, actions: [...actions], resources });
    f.role.addToPrincipalPolicy(statement('EventLog', ACTIONS.events[access.events], [this.tables.events.tableArn]));
    f.role.addToPrincipalPolicy(statement('ControlRecords', ACTIONS.control[access.control], [this.tables.control.tableArn]));
    f.role.addToPrincipalPolicy(statement('ImagesReadModels', ACTIONS.images[access.images], [imagesTables, `${imagesTables}/index/*`]));

    const reason =
      'The images read model is versioned (<prefix>-images-v<N>): a rebuild fills generation N+1 from the event log and switches ' +
      'by a control record without a redeploy, so the function must reach every generation and its GSIs (byId, byVm). The wildcard ' +
      "stays inside this service's table prefix.";
    const arn = nagArn(this.stack, (p) => `arn:${p.partition}:dynamodb:${p.region}:${p.account}:table/${this.tables.imagesPrefix}-images-v*`);
    Validations.of(f.role).acknowledge(
      { id: `AwsSolutions-IAM5[Resource::${arn}]`, reason },
      { id: `AwsSolutions-IAM5[Resource::${arn}/index/*]`, reason },
    );
  }
}
