/** Stops the DynamoDB Local of globalSetup.ts. */
export default async (): Promise<void> => {
  await globalThis.__cc1DynamoServer?.stop();
};
