import { Duration, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/**
 * Where failed deliveries end up (stream records the projector gave up on, VM events
 * the handler could not take): encrypted, TLS-only, kept for the SQS maximum of 14
 * days, and watched by an alarm on its depth (see the stack's alarms).
 */
export class DeadLetterQueue extends Construct {
  readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: { purpose: string }) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: `This queue is itself the dead-letter destination (${props.purpose}); a DLQ of a DLQ would only move the problem. Its depth raises an alarm instead.`,
    });
  }
}
