/**
 * Stream of the events table -> images read model (partial batch responses; stale and
 * duplicate records change nothing). Projection lag is published as a metric.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { Projector } from '../../adapters/dynamodb/projector';
import { container, serviceLogger } from '../shared/container';
import { lazy } from '../shared/lazy';
import { metrics } from '../shared/metrics';
import { observedHandler } from '../shared/observability';

const logger = serviceLogger();
const projector = lazy(() => new Projector({ readModel: container().deps.readModel }));

export const handler = observedHandler(logger, async (event: DynamoDBStreamEvent, context: Context) => {
  const oldest = Math.min(...event.Records.map((r) => r.dynamodb?.ApproximateCreationDateTime ?? Date.now() / 1000));
  const response = await projector().processBatch(event, context);
  metrics.addMetric('ProjectionLagMs', MetricUnit.Milliseconds, Math.max(0, Date.now() - oldest * 1000));
  return response;
});
