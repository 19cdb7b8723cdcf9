import { Duration } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/**
 * The alarms an operator needs, all sent to one encrypted SNS topic. The topic uses a
 * customer managed key: CloudWatch cannot publish to a topic under the AWS managed
 * `alias/aws/sns` key, whose policy cannot be changed.
 */
export class Alarms extends Construct {
  readonly topic: sns.Topic;
  private readonly action: SnsAction;

  constructor(scope: Construct, id: string, props: { email?: string }) {
    super(scope, id);
    const key = new kms.Key(this, 'TopicKey', { enableKeyRotation: true, description: 'CC1 storage images alarm topic' });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        resources: ['*'], // in a key policy, "*" means this key
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'CC1 storage images alarms', masterKey: key, enforceSSL: true });
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    this.action = new SnsAction(this.topic);
  }

  private add(alarm: cloudwatch.Alarm): cloudwatch.Alarm {
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    return alarm;
  }

  /** Any error of a function in five minutes. */
  functionErrors(fn: lambda.IFunction): cloudwatch.Alarm {
    return this.add(
      fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }).createAlarm(this, `${fn.node.scope!.node.id}Errors`, {
        alarmDescription: `${fn.node.scope!.node.id}: the function failed (see its log group)`,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
  }

  /** A dead-letter queue holds anything at all. */
  queueNotEmpty(queue: sqs.IQueue): cloudwatch.Alarm {
    const name = queue.node.scope!.node.id;
    return this.add(
      queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }).createAlarm(this, `${name}NotEmpty`, {
        alarmDescription: `${name}: messages were dead-lettered (inspect and redrive them, see docs/deploy.md)`,
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
  }

  /** Projection lag: the age of the newest record the projector's stream mapping read. */
  projectionLag(projector: lambda.IFunction, max: Duration): cloudwatch.Alarm {
    return this.add(
      projector.metric('IteratorAge', { period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }).createAlarm(this, 'ProjectionLag', {
        alarmDescription: `The read models are more than ${max.toHumanString()} behind the event log`,
        threshold: max.toMilliseconds(),
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
  }

  /** Server errors of the API (a handler failing or timing out; bad input must be 4xx). */
  api5xx(stage: apigwv2.HttpStage): cloudwatch.Alarm {
    return this.add(
      stage.metricServerError({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }).createAlarm(this, 'Api5xx', {
        alarmDescription: 'The HTTP API answered 5xx',
        threshold: 5,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
  }
}
