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
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/shared/config';

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

  /**
   * One alarm into the topic (and back to OK). Missing data is "not breaching": a
   * function that is not called, or a metric nothing emitted, is healthy.
   */
  private alarm(id: string, metric: cloudwatch.Metric | cloudwatch.MathExpression, description: string, threshold: number, options: { atLeast?: boolean; periods?: number } = {}): cloudwatch.Alarm {
    const alarm = metric.createAlarm(this, id, {
      alarmDescription: description,
      threshold,
      evaluationPeriods: options.periods ?? 1,
      comparisonOperator: options.atLeast
        ? cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        : cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    return alarm;
  }

  /** Any error of a function in five minutes. */
  functionErrors(fn: lambda.IFunction): cloudwatch.Alarm {
    const name = nameOf(fn);
    const errors = fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM });
    return this.alarm(`${name}Errors`, errors, `${name}: the function failed (see its log group)`, 1, { atLeast: true });
  }

  /** Lambda refused invocations: concurrency (the account's, or the reconciler's reserved 1) ran out. */
  throttles(fn: lambda.IFunction): cloudwatch.Alarm {
    const name = nameOf(fn);
    const throttles = fn.metricThrottles({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM });
    return this.alarm(`${name}Throttles`, throttles, `${name}: invocations were throttled`, 1, { atLeast: true });
  }

  /** The slowest invocation used more than 80% of the timeout: the next slow host makes it time out. */
  durationNearTimeout(fn: lambda.IFunction, timeout: Duration): cloudwatch.Alarm {
    const name = nameOf(fn);
    const slowest = fn.metricDuration({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM });
    const description = `${name}: an invocation ran longer than 80% of its ${timeout.toHumanString()} timeout`;
    return this.alarm(`${name}NearTimeout`, slowest, description, Math.round(timeout.toMilliseconds() * 0.8));
  }

  /** A dead-letter queue holds anything at all. */
  queueNotEmpty(queue: sqs.IQueue): cloudwatch.Alarm {
    const name = nameOf(queue);
    const depth = queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM });
    return this.alarm(`${name}NotEmpty`, depth, `${name}: messages were dead-lettered (inspect and redrive them, see docs/deploy.md)`, 0);
  }

  /** Stream lag: the age of the newest record a stream consumer's event source mapping read, for three minutes. */
  streamLag(id: string, consumer: lambda.IFunction, max: Duration, what: string): cloudwatch.Alarm {
    return this.alarm(id, iteratorAge(consumer), `${what} more than ${max.toHumanString()} behind the event log`, max.toMilliseconds(), { periods: 3 });
  }

  /** The share (percent) of `failed` among `failed` + `succeeded` in 15 minutes went above `percent`. */
  failureRate(id: string, failed: cloudwatch.Metric, succeeded: cloudwatch.Metric, percent: number, what: string): cloudwatch.Alarm {
    const rate = new cloudwatch.MathExpression({
      expression: '100 * FILL(failed, 0) / (FILL(failed, 0) + FILL(succeeded, 0))',
      usingMetrics: { failed, succeeded },
      period: Duration.minutes(15),
      label: `${what} failing (%)`,
    });
    return this.alarm(id, rate, `More than ${percent}% of ${what} failed in 15 minutes`, percent);
  }

  /** A count (summed over the metric's period) reached `threshold`. */
  countReached(id: string, count: cloudwatch.Metric, threshold: number, description: string): cloudwatch.Alarm {
    return this.alarm(id, count, description, threshold, { atLeast: true });
  }

  /** Server errors of the API (a handler failing or timing out; bad input must be 4xx). */
  api5xx(stage: apigwv2.HttpStage): cloudwatch.Alarm {
    const errors = stage.metricServerError({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM });
    return this.alarm('Api5xx', errors, 'The HTTP API answered 5xx', 5, { atLeast: true });
  }
}

/** The construct id a function or queue was made under (RestApi, ProjectorDlq, ...). */
const nameOf = (resource: lambda.IFunction | sqs.IQueue): string => resource.node.scope!.node.id;

export const iteratorAge = (consumer: lambda.IFunction): cloudwatch.Metric =>
  consumer.metric('IteratorAge', { period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM });

/**
 * A business metric of the service (functions/shared/metrics.ts): its total (the code
 * emits each count once with the `service` dimension only), or one slice of its
 * breakdown (e.g. `{ mode: 'hot' }`; the code emits that too).
 */
export const serviceMetric = (metricName: string, period: Duration, breakdown: Record<string, string> = {}): cloudwatch.Metric =>
  new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { service: SERVICE_NAME, ...breakdown }, statistic: cloudwatch.Stats.SUM, period });
