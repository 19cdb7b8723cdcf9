/**
 * Stream of the events table -> images read model (partial batch responses; stale and
 * duplicate records change nothing). Projection lag is published as a metric.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { Projector } from '../../adapters/dynamodb/projector';
import { container } from '../shared/container';
import { metrics } from '../shared/metrics';

let projector: Projector | undefined;

export const handler = async (event: DynamoDBStreamEvent, context: Context) => {
  projector ??= new Projector({ readModel: container().deps.readModel });
  const oldest = Math.min(...event.Records.map((r) => r.dynamodb?.ApproximateCreationDateTime ?? Date.now() / 1000));
  const response = await projector.processBatch(event, context);
  metrics.addMetric('ProjectionLagMs', MetricUnit.Milliseconds, Math.max(0, Date.now() - oldest * 1000));
  metrics.publishStoredMetrics();
  return response;
};
