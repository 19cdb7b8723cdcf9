#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { StorageImagesStack } from './storageImagesStack';

const app = new App();
new StorageImagesStack(app, 'Cc1StorageImages', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
