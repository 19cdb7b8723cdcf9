/**
 * Bug 6 of docs/reliability.md: the local stream feed's timer queued a pass per tick
 * behind a slow one, so under load the passes piled up and starved the process. Now a
 * tick skips while a pass runs. (This pins the current scan-based feed; it goes with the
 * feed when the DynamoDB Streams poller replaces it.)
 */
import type { EventStore, StoredEvent } from '../../application/storePorts';
import { LocalStreamFeed } from '../../adapters/dynamodb/localStreamFeed';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('ticks during a slow pass start no pass of their own, now or after it', async () => {
  let passes = 0;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  // A pass that cannot finish until released: the table scan of a busy store.
  const events: Pick<EventStore, 'scanAll'> = {
    scanAll: async function* () {
      passes += 1;
      await held;
      yield [] as StoredEvent[];
    },
  };
  const feed = new LocalStreamFeed(events, { processBatch: async () => ({ batchItemFailures: [] }) }, { onError: () => undefined });
  feed.start(1);
  while (passes === 0) await sleep(5);
  await sleep(100); // dozens of ticks while the pass is held
  const stopped = feed.stop(); // waits for the pass in flight, and for any pass queued behind it
  release();
  await stopped;
  expect(passes).toBe(1);
});
