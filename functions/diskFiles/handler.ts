/**
 * Stream of the events table (filtered to StorageImageCreated / StorageImageRevoked
 * by the event source mapping) -> disk files on the storage host over SSM.
 */
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { container, serviceLogger, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { observedHandler } from '../shared/observability';
import { diskFilesSink } from './reaction';

useHosts(hostsOverSsm);
const logger = serviceLogger();
const sink = diskFilesSink(() => container().deps);

export const handler = observedHandler(logger, (event: DynamoDBStreamEvent, context: Context) => sink.processBatch(event, context));
