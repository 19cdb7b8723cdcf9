/**
 * Counts DynamoDB requests by command name with a client middleware (for the
 * benchmark and for tests that prove what an operation costs). Optionally asks for
 * ConsumedCapacity on item operations and sums it, with the items returned/scanned.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

const ITEM_OPERATIONS = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'BatchWriteItem',
]);

export interface OperationStats {
  requests: number;
  /** Sum of ConsumedCapacity.CapacityUnits (when asked for). */
  capacityUnits: number;
  /** Sum of `Count` of Query/Scan answers: items returned. */
  itemsReturned: number;
  /** Sum of `ScannedCount` of Query/Scan answers: items read before filtering. */
  itemsScanned: number;
}

type Capacity = { CapacityUnits?: number };

let counterSeq = 0;

export class RequestCounter {
  private stats = new Map<string, OperationStats>();
  private readonly name = `cc1RequestCounter${++counterSeq}`;

  constructor(
    private readonly client: DynamoDBClient,
    readonly options: { returnConsumedCapacity?: boolean } = {},
  ) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = String(context.commandName ?? 'unknown').replace(/Command$/, '');
        const input = args.input as Record<string, unknown>;
        if (this.options.returnConsumedCapacity && ITEM_OPERATIONS.has(operation) && input.ReturnConsumedCapacity === undefined) {
          input.ReturnConsumedCapacity = 'TOTAL';
        }
        const s = this.entry(operation);
        s.requests += 1;
        const result = await next(args);
        const output = result.output as { ConsumedCapacity?: Capacity | Capacity[]; Count?: number; ScannedCount?: number };
        const capacity = output.ConsumedCapacity;
        for (const c of Array.isArray(capacity) ? capacity : capacity ? [capacity] : []) s.capacityUnits += c.CapacityUnits ?? 0;
        s.itemsReturned += output.Count ?? 0;
        s.itemsScanned += output.ScannedCount ?? 0;
        return result;
      },
      { step: 'initialize', name: this.name, override: true },
    );
  }

  private entry(operation: string): OperationStats {
    let s = this.stats.get(operation);
    if (!s) {
      s = { requests: 0, capacityUnits: 0, itemsReturned: 0, itemsScanned: 0 };
      this.stats.set(operation, s);
    }
    return s;
  }

  /** Requests of one operation (`'Query'`), or of all. */
  count(operation?: string): number {
    if (operation) return this.stats.get(operation)?.requests ?? 0;
    let n = 0;
    for (const s of this.stats.values()) n += s.requests;
    return n;
  }

  get(operation: string): OperationStats {
    return { ...this.entry(operation) };
  }

  snapshot(): Record<string, OperationStats> {
    return Object.fromEntries([...this.stats].map(([k, v]) => [k, { ...v }]));
  }

  reset(): void {
    this.stats = new Map();
  }

  /** Removes the middleware from the client. */
  detach(): void {
    this.client.middlewareStack.remove(this.name);
  }
}

export const countRequests = (client: DynamoDBClient, options?: { returnConsumedCapacity?: boolean }): RequestCounter =>
  new RequestCounter(client, options);
