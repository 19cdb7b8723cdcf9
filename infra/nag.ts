import { Stack, Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag names a wildcard finding after the resource as it renders it:
 * `arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/x*` in an
 * environment-agnostic stack, the literal partition, region and account otherwise. Acknowledgments
 * must use the same text, whichever way the stack is deployed.
 */
export const nagArn = (scope: IConstruct, arn: (p: { partition: string; region: string; account: string }) => string): string => {
  const stack = Stack.of(scope);
  return arn({
    // With @aws-cdk/core:enablePartitionLiterals, a stack with a known region renders its partition literally.
    partition: Token.isUnresolved(stack.partition) ? '<AWS::Partition>' : stack.partition,
    region: Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region,
    account: Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account,
  });
};
