/**
 * Stream of the events table (filtered to StorageImageCreated / StorageImageRevoked
 * by the event source mapping) -> disk files on the storage host over SSM.
 */
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { container, useHosts } from '../shared/container';
import { hostsOverSsm } from '../shared/hostsOverSsm';
import { diskFilesSink } from './reaction';

useHosts(hostsOverSsm);
const sink = diskFilesSink(() => container().deps);

export const handler = (event: DynamoDBStreamEvent, context: Context) => sink.processBatch(event, context);
