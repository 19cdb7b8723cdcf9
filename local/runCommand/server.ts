/**
 * A local stand-in for SSM Run Command (SPEC 4.5). It speaks the SSM JSON 1.1 protocol
 * (POST /, `X-Amz-Target: AmazonSSM.<Operation>`) well enough for the real
 * @aws-sdk/client-ssm: SendCommand, GetCommandInvocation, ListCommandInvocations,
 * CancelCommand. Like SSM it checks every parameter against the document's
 * allowedPattern before anything runs, then runs each aws:runShellScript step the
 * way the SSM agent does (`sh -c <script file>`, parameters as `SSM_<Name>` env vars).
 *
 * Managed-instance ids map to this machine: a real libvirt (`libvirtUri`) or the
 * simulated virsh (local/simulatedVirsh) put first on PATH.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { documentsByName, type SsmCommandDocument } from '../../adapters/ssm/documents';
import { SIMULATED_STATE_ENV, SIMULATED_VIRSH_DIR } from '../simulatedVirsh/simulatedHosts';

export interface LocalInstance {
  /** Replaces the LibvirtUri parameter for this instance (e.g. `qemu:///system`). */
  libvirtUri?: string;
  /** Replaces the StoragePath parameter for this instance. */
  storagePath?: string;
  /** `simulated`: run with local/simulatedVirsh/virsh first on PATH. Default `libvirt`. */
  virsh?: 'libvirt' | 'simulated';
  /** State file of the simulated virsh. Default: in the OS temp folder, per instance. */
  simulatedStateFile?: string;
  /** PATH of the host's shell (default: this process's), e.g. one without parted or mkfs.vfat. */
  path?: string;
}

export interface LocalRunCommandOptions {
  /** Managed-instance id -> how to run commands "on" it. */
  instances: Record<string, LocalInstance>;
  /** Documents by name. Default: the project's documents under their default names. */
  documents?: Map<string, SsmCommandDocument>;
  port?: number; // default: any free port
  host?: string; // default 127.0.0.1
  /** Overrides every step's timeoutSeconds (tests of TimedOut). */
  stepTimeoutSeconds?: number;
  /** Makes a new invocation invisible for this long, as SSM's InvocationDoesNotExist race. */
  invocationVisibleAfterMs?: number;
  log?: (line: string) => void;
}

export interface LocalRunCommandStats {
  commandsAccepted: number;
  commandsRejected: number;
  stepsStarted: number;
}

export interface LocalRunCommand {
  url: string;
  stats: LocalRunCommandStats;
  /**
   * Takes an instance off line (its SSM agent cannot be reached) or back. Commands sent to
   * an off-line instance end as SSM ends them after the delivery timeout: `TimedOut` /
   * `DeliveryTimedOut`, nothing run (here at once, not after the timeout).
   */
  setOnline(instanceId: string, online: boolean): void;
  close(): Promise<void>;
}

type Status = 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelling' | 'Cancelled';

interface Invocation {
  instanceId: string;
  status: Status;
  statusDetails: string;
  responseCode: number;
  stdout: string;
  stderr: string;
  pluginName: string;
  startedAt?: Date;
  endedAt?: Date;
  child?: ChildProcess;
}

interface Command {
  id: string;
  documentName: string;
  parameters: Record<string, string[]>;
  requestedAt: Date;
  comment: string;
  invocations: Map<string, Invocation>;
}

/** An error answered the way SSM does: HTTP 400 with `__type`. */
class SsmError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const OUTPUT_LIMIT = 24_000; // GetCommandInvocation truncates output to 24,000 characters
const FINAL: ReadonlySet<Status> = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);

export async function startLocalRunCommand(options: LocalRunCommandOptions): Promise<LocalRunCommand> {
  const documents = options.documents ?? documentsByName();
  const log = options.log ?? (() => undefined);
  const stats: LocalRunCommandStats = { commandsAccepted: 0, commandsRejected: 0, stepsStarted: 0 };
  const commands = new Map<string, Command>();
  const offline = new Set<string>();
  let closing = false;

  const instanceOf = (id: string): LocalInstance => {
    const instance = options.instances[id];
    if (!instance) throw new SsmError('InvalidInstanceId', `Instance ${id} is not a registered managed instance`);
    return instance;
  };

  /** Resolves and checks parameters exactly as SSM does before sending anything to a host. */
  function resolveParameters(doc: SsmCommandDocument, given: unknown): Record<string, string> {
    if (given !== undefined && (typeof given !== 'object' || given === null || Array.isArray(given))) {
      throw new SsmError('InvalidParameters', 'Parameters must be a map of name to list of values');
    }
    const input = (given ?? {}) as Record<string, unknown>;
    const values: Record<string, string> = {};
    for (const name of Object.keys(input)) {
      if (!doc.parameters[name]) throw new SsmError('InvalidParameters', `Parameter "${name}" is not defined in the document`);
    }
    for (const [name, spec] of Object.entries(doc.parameters)) {
      const list = input[name];
      let value: string;
      if (list === undefined) {
        if (spec.default === undefined) throw new SsmError('InvalidParameters', `Missing required parameter "${name}"`);
        value = spec.default;
      } else {
        if (!Array.isArray(list) || list.length !== 1 || typeof list[0] !== 'string') {
          throw new SsmError('InvalidParameters', `Parameter "${name}" of type String takes exactly one value`);
        }
        value = list[0];
      }
      if (!new RegExp(spec.allowedPattern).test(value)) {
        throw new SsmError('InvalidParameters', `Parameter "${name}" fails to match the allowed pattern ${spec.allowedPattern}`);
      }
      values[name] = value;
    }
    return values;
  }

  /** Instance settings that replace parameters (checked at start-up against the patterns). */
  function overrides(doc: SsmCommandDocument, instance: LocalInstance): Record<string, string> {
    const result: Record<string, string> = {};
    if (instance.libvirtUri !== undefined && doc.parameters.LibvirtUri) result.LibvirtUri = instance.libvirtUri;
    if (instance.storagePath !== undefined && doc.parameters.StoragePath) result.StoragePath = instance.storagePath;
    return result;
  }

  for (const [id, instance] of Object.entries(options.instances)) {
    for (const doc of documents.values()) {
      for (const [name, value] of Object.entries(overrides(doc, instance))) {
        if (!new RegExp(doc.parameters[name]!.allowedPattern).test(value)) {
          throw new Error(`instance ${id}: ${name} "${value}" does not match ${doc.parameters[name]!.allowedPattern}`);
        }
      }
    }
  }

  function environment(instanceId: string, instance: LocalInstance, values: Record<string, string>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_SSM_INSTANCE_ID: instanceId, AWS_SSM_REGION_NAME: 'us-east-1' };
    for (const [name, value] of Object.entries(values)) env[`SSM_${name}`] = value;
    if (instance.path !== undefined) env.PATH = instance.path;
    if (instance.virsh === 'simulated') {
      // The simulated virsh is a node script: make sure this node is found too.
      env.PATH = [SIMULATED_VIRSH_DIR, dirname(process.execPath), env.PATH ?? ''].join(':');
      env[SIMULATED_STATE_ENV] = instance.simulatedStateFile ?? join(tmpdir(), `cc1-simulated-virsh-${instanceId}.json`);
    }
    return env;
  }

  async function execute(command: Command, invocation: Invocation, doc: SsmCommandDocument, values: Record<string, string>) {
    const instance = instanceOf(invocation.instanceId);
    const env = environment(invocation.instanceId, instance, values);
    const workDir = await mkdtemp(join(tmpdir(), 'cc1-runcommand-'));
    invocation.status = 'InProgress';
    invocation.statusDetails = 'InProgress';
    invocation.startedAt = new Date();
    try {
      for (const [index, step] of doc.mainSteps.entries()) {
        if (invocation.status !== 'InProgress') break; // cancelled meanwhile
        invocation.pluginName = step.name;
        // As the SSM agent: the runCommand lines become a script file run by `sh -c`.
        const script = join(workDir, `_script_${index}.sh`);
        await writeFile(script, step.inputs.runCommand.join('\n') + '\n', { mode: 0o700 });
        const timeoutSeconds = options.stepTimeoutSeconds ?? step.inputs.timeoutSeconds ?? 3600;
        stats.stepsStarted += 1;
        log(`[runcommand] ${command.id} ${command.documentName}/${step.name} on ${invocation.instanceId}`);
        const { code, timedOut } = await runStep(invocation, script, env, workDir, timeoutSeconds);
        if (invocation.status !== 'InProgress') break;
        invocation.responseCode = code;
        if (timedOut) {
          invocation.status = 'TimedOut';
          invocation.statusDetails = 'ExecutionTimedOut';
          break;
        }
        if (code !== 0) {
          invocation.status = 'Failed';
          invocation.statusDetails = 'Failed';
          break;
        }
      }
      if (invocation.status === 'InProgress') {
        invocation.status = 'Success';
        invocation.statusDetails = 'Success';
      }
    } catch (e) {
      invocation.status = 'Failed';
      invocation.statusDetails = 'Failed';
      invocation.stderr += `\nlocal endpoint: ${String(e)}`;
    } finally {
      invocation.endedAt = new Date();
      await rm(workDir, { recursive: true, force: true });
    }
  }

  function runStep(invocation: Invocation, script: string, env: NodeJS.ProcessEnv, cwd: string, timeoutSeconds: number) {
    return new Promise<{ code: number; timedOut: boolean }>((resolve) => {
      // Own process group, so a timeout or cancel kills virsh & co. too.
      const child = spawn('sh', ['-c', script], { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      invocation.child = child;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child);
      }, timeoutSeconds * 1000);
      child.stdout.on('data', (chunk: Buffer) => (invocation.stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (invocation.stderr += chunk.toString()));
      child.on('error', (e) => {
        invocation.stderr += String(e);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        invocation.child = undefined;
        resolve({ code: code ?? -1, timedOut });
      });
    });
  }

  function sendCommand(body: Record<string, unknown>) {
    if (closing) throw new SsmError('InternalServerError', 'endpoint is closing');
    const documentName = String(body.DocumentName ?? '');
    const doc = documents.get(documentName);
    if (!doc) throw new SsmError('InvalidDocument', `Document ${documentName} does not exist`);
    const values = resolveParameters(doc, body.Parameters);
    const instanceIds = body.InstanceIds;
    if (!Array.isArray(instanceIds) || instanceIds.length === 0) {
      throw new SsmError('InvalidInstanceId', 'InstanceIds is required (Targets are not supported locally)');
    }
    for (const id of instanceIds) instanceOf(String(id));

    const command: Command = {
      id: randomUUID(),
      documentName,
      parameters: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, [v]])),
      requestedAt: new Date(),
      comment: typeof body.Comment === 'string' ? body.Comment : '',
      invocations: new Map(),
    };
    for (const id of instanceIds.map(String)) {
      const invocation: Invocation = {
        instanceId: id,
        status: 'Pending',
        statusDetails: 'Pending',
        responseCode: -1,
        stdout: '',
        stderr: '',
        pluginName: doc.mainSteps[0]?.name ?? '',
      };
      command.invocations.set(id, invocation);
      if (offline.has(id)) {
        invocation.status = 'TimedOut';
        invocation.statusDetails = 'DeliveryTimedOut';
        invocation.endedAt = new Date();
        log(`[runcommand] ${command.id} ${documentName} not delivered: ${id} is off line`);
        continue;
      }
      const perInstance = { ...values, ...overrides(doc, instanceOf(id)) };
      void execute(command, invocation, doc, perInstance);
    }
    commands.set(command.id, command);
    stats.commandsAccepted += 1;
    return { Command: describeCommand(command) };
  }

  function describeCommand(c: Command) {
    const all = [...c.invocations.values()];
    const status = all.every((i) => i.status === 'Success')
      ? 'Success'
      : all.find((i) => !FINAL.has(i.status))?.status ?? all.find((i) => i.status !== 'Success')?.status ?? 'Pending';
    return {
      CommandId: c.id,
      DocumentName: c.documentName,
      DocumentVersion: '1',
      Comment: c.comment,
      Parameters: c.parameters,
      InstanceIds: all.map((i) => i.instanceId),
      RequestedDateTime: c.requestedAt.getTime() / 1000,
      Status: status,
      StatusDetails: status,
      TargetCount: all.length,
      CompletedCount: all.filter((i) => FINAL.has(i.status)).length,
      ErrorCount: all.filter((i) => i.status === 'Failed' || i.status === 'TimedOut').length,
      TimeoutSeconds: 3600,
    };
  }

  function findInvocation(body: Record<string, unknown>): [Command, Invocation] {
    const command = commands.get(String(body.CommandId));
    const invocation = command?.invocations.get(String(body.InstanceId));
    const visibleAt = (command?.requestedAt.getTime() ?? 0) + (options.invocationVisibleAfterMs ?? 0);
    if (!command || !invocation || Date.now() < visibleAt) throw new SsmError('InvocationDoesNotExist', 'Invocation does not exist');
    return [command, invocation];
  }

  const truncate = (text: string) => text.slice(0, OUTPUT_LIMIT);
  const iso = (d?: Date) => (d ? d.toISOString() : '');

  function getCommandInvocation(body: Record<string, unknown>) {
    const [command, i] = findInvocation(body);
    const elapsed = i.startedAt ? ((i.endedAt ?? new Date()).getTime() - i.startedAt.getTime()) / 1000 : 0;
    return {
      CommandId: command.id,
      InstanceId: i.instanceId,
      Comment: command.comment,
      DocumentName: command.documentName,
      DocumentVersion: '1',
      PluginName: i.pluginName,
      ResponseCode: i.responseCode,
      ExecutionStartDateTime: iso(i.startedAt),
      ExecutionElapsedTime: `PT${elapsed.toFixed(3)}S`,
      ExecutionEndDateTime: iso(i.endedAt),
      Status: i.status,
      StatusDetails: i.statusDetails,
      StandardOutputContent: truncate(i.stdout),
      StandardOutputUrl: '',
      StandardErrorContent: truncate(i.stderr),
      StandardErrorUrl: '',
    };
  }

  function listCommandInvocations(body: Record<string, unknown>) {
    const rows: object[] = [];
    for (const c of commands.values()) {
      if (body.CommandId !== undefined && c.id !== body.CommandId) continue;
      for (const i of c.invocations.values()) {
        if (body.InstanceId !== undefined && i.instanceId !== body.InstanceId) continue;
        rows.push({
          CommandId: c.id,
          InstanceId: i.instanceId,
          InstanceName: '',
          Comment: c.comment,
          DocumentName: c.documentName,
          DocumentVersion: '1',
          RequestedDateTime: c.requestedAt.getTime() / 1000,
          Status: i.status,
          StatusDetails: i.statusDetails,
          StandardOutputUrl: '',
          StandardErrorUrl: '',
          CommandPlugins: body.Details
            ? [
                {
                  Name: i.pluginName,
                  Status: i.status,
                  StatusDetails: i.statusDetails,
                  ResponseCode: i.responseCode,
                  ResponseStartDateTime: i.startedAt ? i.startedAt.getTime() / 1000 : undefined,
                  ResponseFinishDateTime: i.endedAt ? i.endedAt.getTime() / 1000 : undefined,
                  Output: truncate(i.stdout + i.stderr).slice(0, 2500),
                },
              ]
            : [],
        });
      }
    }
    const start = Number(body.NextToken ?? 0) || 0;
    const max = typeof body.MaxResults === 'number' ? body.MaxResults : 50;
    const page = rows.slice(start, start + max);
    return { CommandInvocations: page, ...(start + max < rows.length ? { NextToken: String(start + max) } : {}) };
  }

  function cancelCommand(body: Record<string, unknown>) {
    const command = commands.get(String(body.CommandId));
    if (!command) throw new SsmError('InvalidCommandId', 'Command does not exist');
    const only = Array.isArray(body.InstanceIds) ? new Set(body.InstanceIds.map(String)) : undefined;
    for (const i of command.invocations.values()) {
      if (only && !only.has(i.instanceId)) continue;
      if (FINAL.has(i.status)) continue;
      i.status = 'Cancelled';
      i.statusDetails = 'Cancelled';
      i.endedAt = new Date();
      if (i.child) killGroup(i.child);
    }
    return {};
  }

  const operations: Record<string, (body: Record<string, unknown>) => object> = {
    SendCommand: sendCommand,
    GetCommandInvocation: getCommandInvocation,
    ListCommandInvocations: listCommandInvocations,
    CancelCommand: cancelCommand,
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const reply = (status: number, payload: object, errorType?: string) => {
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-requestid': randomUUID(),
        ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
      });
      res.end(JSON.stringify(payload));
    };
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith('AmazonSSM.') ? operations[target.slice('AmazonSSM.'.length)] : undefined;
      if (req.method !== 'POST' || !operation) throw new SsmError('UnknownOperationException', `Unsupported operation ${target}`);
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        throw new SsmError('SerializationException', 'Body is not JSON');
      }
      if (typeof body !== 'object' || body === null) throw new SsmError('SerializationException', 'Body is not an object');
      reply(200, operation(body as Record<string, unknown>));
    } catch (e) {
      if (e instanceof SsmError) {
        if (req.headers['x-amz-target'] === 'AmazonSSM.SendCommand') stats.commandsRejected += 1;
        log(`[runcommand] ${e.type}: ${e.message}`);
        reply(400, { __type: e.type, message: e.message, Message: e.message }, e.type);
      } else {
        reply(500, { __type: 'InternalServerError', message: String(e) }, 'InternalServerError');
      }
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    stats,
    setOnline(instanceId, online) {
      instanceOf(instanceId);
      if (online) offline.delete(instanceId);
      else offline.add(instanceId);
    },
    async close() {
      closing = true;
      for (const c of commands.values()) for (const i of c.invocations.values()) if (i.child) killGroup(i.child);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function killGroup(child: ChildProcess) {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}
