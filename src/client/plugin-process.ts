/**
 * Starts the real plugin executable the way Nomad's go-plugin client does:
 * same environment variables, first stdout line as the handshake, stderr
 * read as go-hclog JSON, gRPC over the announced unix socket, and Nomad's
 * kill sequence at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { BasePluginClient } from '../gen/hashicorp/nomad/plugins/base/base';
import { DriverClient } from '../gen/hashicorp/nomad/plugins/drivers/driver';
import { HealthClient } from '../gen/grpc/health/v1/health';
import { GRPCControllerClient } from '../gen/plugin/go_plugin';
import { PROJECT_ROOT } from '../native/binding';

export const PLUGIN_BIN = path.join(PROJECT_ROOT, 'bin', 'nomad-driver-exec2');

/**
 * Nomad's handshake config for driver plugins (spec §1.4), the client's own
 * copy as in Nomad: the server's constants live in src/main/rpc/go-plugin.ts,
 * and a plugin whose cookie drifted from the spec must fail this client's
 * handshake rather than agree with it by construction.
 */
export const MAGIC_COOKIE_KEY = 'NOMAD_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255';

export interface Handshake {
  core: number;
  app: number;
  network: string;
  address: string;
  protocol: string;
  raw: string;
}

export interface LogLine {
  raw: string;
  json: Record<string, unknown> | null;
}

export function parseHandshake(line: string): Handshake {
  const parts = line.trim().split('|');
  if (parts.length < 4) throw new Error(`Unrecognized remote plugin message: ${line}`);
  return {
    core: Number(parts[0]),
    app: Number(parts[1]),
    network: parts[2] ?? '',
    address: parts[3] ?? '',
    protocol: parts[4] ?? 'netrpc',
    raw: line,
  };
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** leave out or replace handshake variables (for negative tests) */
  cookie?: string | null;
  protocolVersions?: string | null;
  args?: string[];
  handshakeTimeoutMs?: number;
  /** a command that execs the plugin (its path and args appended), as an agent's environment would start it */
  wrapper?: string[];
  /** the executable to start (default: this tree's bin/nomad-driver-exec2), e.g. an installed release */
  bin?: string;
  /** true: `env` replaces this process's environment instead of adding to it (a client host's bare environment) */
  replaceEnv?: boolean;
}

/** Promisified unary call on a ts-proto grpc-js client. */
export type Unary<Req, Res> = (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall;

export function call<Req, Res>(client: grpc.Client, fn: Unary<Req, Res>, req: Req, opts: Partial<grpc.CallOptions> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn.call(client, req, new grpc.Metadata(), opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export class PluginProcess {
  readonly stdoutExtra: string[] = [];
  readonly logs: LogLine[] = [];
  driver!: DriverClient;
  base!: BasePluginClient;
  health!: HealthClient;
  controller!: GRPCControllerClient;
  handshake!: Handshake;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private exitWaiters: Array<() => void> = [];
  private pipesClosed = 0;

  private constructor(readonly child: ChildProcess) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exited(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.exitInfo;
  }

  /** Launch and complete the handshake; rejects with stderr when the plugin fails. */
  static async start(opts: StartOptions = {}): Promise<PluginProcess> {
    const env: NodeJS.ProcessEnv = opts.replaceEnv ? { ...opts.env } : { ...process.env, ...opts.env };
    if (opts.cookie !== null) env[MAGIC_COOKIE_KEY] = opts.cookie ?? MAGIC_COOKIE_VALUE;
    else delete env[MAGIC_COOKIE_KEY];
    if (opts.protocolVersions !== null) env.PLUGIN_PROTOCOL_VERSIONS = opts.protocolVersions ?? '2';
    else delete env.PLUGIN_PROTOCOL_VERSIONS;
    env.PLUGIN_MIN_PORT = '10000';
    env.PLUGIN_MAX_PORT = '25000';
    const argv = [...(opts.wrapper ?? []), opts.bin ?? PLUGIN_BIN, ...(opts.args ?? [])];
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new PluginProcess(child);
    child.on('exit', (code, signal) => {
      p.exitInfo = { code, signal };
      p.maybeExited();
    });
    const err = readline.createInterface({ input: child.stderr });
    err.on('line', (raw) => {
      let json: Record<string, unknown> | null = null;
      try {
        const v = JSON.parse(raw) as unknown;
        if (v && typeof v === 'object' && !Array.isArray(v)) json = v as Record<string, unknown>;
      } catch {
        json = null;
      }
      p.logs.push({ raw, json });
    });
    child.stderr.on('close', () => p.pipeClosed());
    child.stdout.on('close', () => p.pipeClosed());
    const out = readline.createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('plugin did not print a handshake in time')), opts.handshakeTimeoutMs ?? 60_000);
      let got = false;
      out.on('line', (line) => {
        if (!got) {
          got = true;
          clearTimeout(timer);
          resolve(line);
        } else {
          p.stdoutExtra.push(line);
        }
      });
      child.on('exit', (code) => {
        if (!got) {
          clearTimeout(timer);
          setImmediate(() => reject(new Error(`plugin exited with code ${code} before the handshake: ${p.logs.map((l) => l.raw).join('\n')}`)));
        }
      });
    });
    p.handshake = parseHandshake(first);
    if (p.handshake.core !== 1) throw new Error(`unsupported core protocol ${p.handshake.core}`);
    if (p.handshake.protocol !== 'grpc') throw new Error(`unsupported plugin protocol ${p.handshake.protocol}`);
    const target = `unix://${p.handshake.address}`;
    const creds = grpc.credentials.createInsecure();
    const options = { 'grpc.max_receive_message_length': 2 ** 31 - 1, 'grpc.default_authority': 'unused' };
    p.driver = new DriverClient(target, creds, options);
    p.base = new BasePluginClient(target, creds, options);
    p.health = new HealthClient(target, creds, options);
    p.controller = new GRPCControllerClient(target, creds, options);
    return p;
  }

  /** Both pipes at EOF and the process reaped: when go-plugin considers it gone. */
  private pipeClosed(): void {
    this.pipesClosed++;
    this.maybeExited();
  }

  private maybeExited(): void {
    if (this.exitInfo && this.pipesClosed >= 2) {
      for (const w of this.exitWaiters.splice(0)) w();
    }
  }

  waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.exitInfo && this.pipesClosed >= 2) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.exitWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  closeClients(): void {
    for (const c of [this.driver, this.base, this.health, this.controller]) c?.close();
  }

  /**
   * Nomad's shutdown of a plugin: Driver.Shutdown (2 s deadline), then
   * go-plugin's Kill(): GRPCController/Shutdown, close, wait 2 s, SIGKILL.
   * Returns whether the plugin exited gracefully.
   */
  async kill(opts: { driverShutdown?: boolean } = {}): Promise<boolean> {
    if (this.exitInfo) {
      this.closeClients();
      return true;
    }
    if (opts.driverShutdown !== false) {
      await call(this.driver, this.driver.shutdown, {}, { deadline: Date.now() + 2000 }).catch(() => undefined);
    }
    await call(this.controller, this.controller.shutdown, {}, { deadline: Date.now() + 2000 }).catch(() => undefined);
    this.closeClients();
    const graceful = await this.waitForExit(2000);
    if (!graceful) {
      this.child.kill('SIGKILL');
      await this.waitForExit(5000);
    }
    return graceful;
  }

  /** Crash: what happens when the plugin dies under Nomad. */
  async sigkill(): Promise<void> {
    this.child.kill('SIGKILL');
    this.closeClients();
    await this.waitForExit(5000);
    // A killed plugin cannot remove its socket; tidy up as a test would want.
    try {
      unlinkSync(this.handshake.address);
    } catch {
      // already gone
    }
  }

  socketExists(): boolean {
    return existsSync(this.handshake.address);
  }
}
