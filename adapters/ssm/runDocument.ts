/**
 * Run one of the project's SSM documents on one managed instance and wait for it:
 * SendCommand, then poll GetCommandInvocation until a final status or the deadline
 * (then CancelCommand and a 'timeout'). Every failure becomes a HostCommandError.
 */
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { HostCommandError } from '../../application/ports';
import { EXIT, type SsmCommandDocument } from './documents/definitions';

export interface RunOptions {
  client: SSMClient;
  hostId: string;
  documentName: string;
  /** The document's definition, to check values against its allowedPatterns before sending. */
  document: Pick<SsmCommandDocument, 'parameters'>;
  parameters: Record<string, string>;
  /** What we are doing, for messages ("attach vdb to vm-1-2"). */
  what: string;
  timeoutMs: number;
  pollIntervalMs: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const errorName = (e: unknown): string => (e as { name?: string } | null)?.name ?? '';
const errorText = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** SSM statuses that are not final yet. */
const RUNNING = new Set(['Pending', 'InProgress', 'Delayed', 'Cancelling']);
/** StatusDetails that mean the agent never ran the command. */
const NOT_DELIVERED = new Set(['Undeliverable', 'Terminated', 'InvalidPlatform', 'DeliveryTimedOut', 'AccessDenied']);

export async function runDocument(o: RunOptions): Promise<RunResult> {
  // The same check SSM makes; a bad value is a caller bug, so it never goes out.
  for (const [name, value] of Object.entries(o.parameters)) {
    const spec = o.document.parameters[name];
    if (!spec || !new RegExp(spec.allowedPattern).test(value)) {
      throw new HostCommandError('failed', `${o.what}: invalid parameter ${name}`, `value ${JSON.stringify(value)}`);
    }
  }
  const deadline = Date.now() + o.timeoutMs;
  let commandId: string | undefined;
  try {
    const sent = await o.client.send(
      new SendCommandCommand({
        DocumentName: o.documentName,
        InstanceIds: [o.hostId],
        Parameters: Object.fromEntries(Object.entries(o.parameters).map(([k, v]) => [k, [v]])),
        // Delivery timeout (SSM's minimum): an offline host fails fast as DeliveryTimedOut.
        TimeoutSeconds: 30,
      }),
    );
    commandId = sent.Command?.CommandId;
  } catch (e) {
    const name = errorName(e);
    if (name === 'InvalidInstanceId') {
      throw new HostCommandError('unreachable', `${o.what}: host ${o.hostId} is not a known managed instance`, errorText(e));
    }
    if (name === 'InvalidDocument' || name === 'InvalidParameters' || name === 'AccessDeniedException') {
      throw new HostCommandError('failed', `${o.what}: SSM refused the command (${name})`, errorText(e));
    }
    throw new HostCommandError('unreachable', `${o.what}: could not send the command to ${o.hostId}`, errorText(e));
  }
  if (!commandId) throw new HostCommandError('failed', `${o.what}: SSM returned no command id`);

  let invocation: GetCommandInvocationCommandOutput | undefined;
  for (;;) {
    // Poll briefly first (virsh answers in well under a second), then at the interval.
    await sleep(Math.min(invocation ? o.pollIntervalMs : 100, Math.max(0, deadline - Date.now())));
    if (Date.now() >= deadline) break;
    try {
      invocation = await o.client.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: o.hostId }));
    } catch (e) {
      // Right after SendCommand the invocation may not exist yet: keep asking.
      if (errorName(e) === 'InvocationDoesNotExist') continue;
      throw new HostCommandError('unreachable', `${o.what}: could not read the command result`, errorText(e));
    }
    if (!RUNNING.has(invocation.Status ?? 'Pending')) return finish(o, invocation);
  }

  await o.client.send(new CancelCommandCommand({ CommandId: commandId, InstanceIds: [o.hostId] })).catch(() => undefined);
  throw new HostCommandError(
    'timeout',
    `${o.what}: no result from ${o.hostId} within ${Math.round(o.timeoutMs / 1000)} s (cancelled; it may still have run)`,
    `command ${commandId}, last status ${invocation?.Status ?? 'none'}`,
  );
}

function finish(o: RunOptions, inv: GetCommandInvocationCommandOutput): RunResult {
  const stdout = inv.StandardOutputContent ?? '';
  const stderr = inv.StandardErrorContent ?? '';
  const detail = [`status ${inv.Status}/${inv.StatusDetails} code ${inv.ResponseCode}`, stderr.trim(), stdout.trim()]
    .filter(Boolean)
    .join('\n');
  if (inv.Status === 'Success') return { stdout, stderr };
  if (NOT_DELIVERED.has(inv.StatusDetails ?? '')) {
    throw new HostCommandError('unreachable', `${o.what}: host ${o.hostId} did not run the command (${inv.StatusDetails})`, detail);
  }
  if (inv.Status === 'TimedOut') {
    throw new HostCommandError('timeout', `${o.what}: the command timed out on ${o.hostId}`, detail);
  }
  if (inv.ResponseCode === EXIT.unknownDomain || stderr.includes('CC1_ERROR=unknown_domain')) {
    throw new HostCommandError('unknown_domain', `${o.what}: the domain is not running on ${o.hostId}`, detail);
  }
  if (inv.ResponseCode === EXIT.notConfirmed) {
    throw new HostCommandError('failed', `${o.what}: virsh answered but the domain's disk list disagrees`, detail);
  }
  throw new HostCommandError('failed', `${o.what}: failed on ${o.hostId} (${inv.Status})`, detail);
}
