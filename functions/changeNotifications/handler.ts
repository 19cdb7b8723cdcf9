/**
 * Stream of the events table (filtered by the event source mapping to the event types
 * that change an image's state or attachment) -> `Storage Image Change` on the bus
 * named by CHANGE_EVENT_BUS_NAME (SPEC 4.7).
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { EventBridgeChangePublisher } from '../../adapters/eventbridge/changePublisher';
import { serviceLogger } from '../shared/container';
import { lazy } from '../shared/lazy';
import { observedHandler } from '../shared/observability';
import { CHANGE_EVENT_BUS_ENV } from './busName';
import { changeNotificationsSink } from './sink';

const logger = serviceLogger();
const publisher = lazy(() => {
  const bus = process.env[CHANGE_EVENT_BUS_ENV];
  if (!bus) throw new Error(`${CHANGE_EVENT_BUS_ENV} is not set`);
  return new EventBridgeChangePublisher(new EventBridgeClient({}), bus);
});
const sink = changeNotificationsSink(publisher);

export const handler = observedHandler(logger, (event: DynamoDBStreamEvent, context: Context) => sink.processBatch(event, context));
