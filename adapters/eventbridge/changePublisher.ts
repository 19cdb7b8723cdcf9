/** Change notifications onto an EventBridge bus (PutEvents), one entry per change. */
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { CHANGE_EVENT_DETAIL_TYPE, CHANGE_EVENT_SOURCE, type ChangePublisher, type StorageImageChange } from '../../application/changeNotifications';

export class EventBridgeChangePublisher implements ChangePublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly eventBusName: string,
  ) {}

  async publish(change: StorageImageChange, time: string): Promise<void> {
    const out = await this.client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.eventBusName,
            Source: CHANGE_EVENT_SOURCE,
            DetailType: CHANGE_EVENT_DETAIL_TYPE,
            Detail: JSON.stringify(change),
            Time: new Date(time),
            Resources: [],
          },
        ],
      }),
    );
    // PutEvents answers 200 with per-entry failures: a refused entry is a failed record, retried by the stream.
    const failed = out.Entries?.find((e) => e.ErrorCode);
    if ((out.FailedEntryCount ?? 0) > 0 || failed) {
      throw new Error(`PutEvents refused the change of image ${change.imageId} v${change.version}: ${failed?.ErrorCode ?? 'unknown'} ${failed?.ErrorMessage ?? ''}`);
    }
  }
}
