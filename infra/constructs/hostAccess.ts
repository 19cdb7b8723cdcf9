import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { DocumentKey } from '../../adapters/ssm/documents/definitions';
import { nagArn } from '../nag';
import type { SsmDocuments } from './ssmDocuments';

export interface HostTag {
  key: string;
  values: string[];
}

/**
 * Lets a function run our SSM documents on CC1 hosts, and nothing else:
 * - `ssm:SendCommand` on the ARNs of the given documents only, and
 * - `ssm:SendCommand` on EC2 instances and hybrid (`mi-`) managed instances only when
 *   they carry the CC1 host tag (`ssm:resourceTag/<key>` in the allowed values).
 * IAM checks SendCommand against the document and against each instance, so both
 * statements must allow the call: another document, or an untagged instance, is denied.
 * Reading results (Get/ListCommandInvocations) and cancelling a timed-out command
 * have no resource-level permissions in IAM, hence `*` for those three.
 */
export const grantHostCommands = (role: iam.IRole, documents: SsmDocuments, keys: readonly DocumentKey[], tag: HostTag): void => {
  const stack = Stack.of(documents);
  const policy = new iam.Policy(documents, `HostCommands${role.node.addr.slice(-8)}`, {
    statements: [
      new iam.PolicyStatement({
        sid: 'SendOurDocuments',
        actions: ['ssm:SendCommand'],
        resources: documents.arns(keys),
      }),
      new iam.PolicyStatement({
        sid: 'SendToTaggedHosts',
        actions: ['ssm:SendCommand'],
        resources: [
          `arn:${stack.partition}:ec2:*:${stack.account}:instance/*`,
          `arn:${stack.partition}:ssm:*:${stack.account}:managed-instance/*`,
        ],
        conditions: { StringEquals: { [`ssm:resourceTag/${tag.key}`]: tag.values } },
      }),
      new iam.PolicyStatement({
        sid: 'FollowCommands',
        actions: ['ssm:GetCommandInvocation', 'ssm:ListCommandInvocations', 'ssm:CancelCommand'],
        resources: ['*'],
      }),
    ],
  });
  policy.attachToRole(role);
  const reason =
    'ssm:GetCommandInvocation, ssm:ListCommandInvocations and ssm:CancelCommand support no resource-level permissions (Resource must be *); ' +
    'ssm:SendCommand on instance/* and managed-instance/* is limited by the ssm:resourceTag condition to hosts tagged as CC1 hosts, ' +
    'because host instance ids are not known at deploy time (hosts join and leave without a redeploy).';
  Validations.of(policy).acknowledge(
    ...[
      'Resource::*',
      nagArn(policy, (p) => `Resource::arn:${p.partition}:ec2:*:${p.account}:instance/*`),
      nagArn(policy, (p) => `Resource::arn:${p.partition}:ssm:*:${p.account}:managed-instance/*`),
    ].map((finding) => ({ id: `AwsSolutions-IAM5[${finding}]`, reason })),
  );
};
