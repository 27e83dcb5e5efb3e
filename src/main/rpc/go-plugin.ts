/**
 * The go-plugin side of the process (protocol reference §1–2): cookie check,
 * version negotiation, the unix socket, the single handshake line, and the
 * auxiliary services every go-plugin client expects.
 */
import { randomInt } from 'node:crypto';
import { chownSync, chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { HealthService, HealthCheckResponse_ServingStatus as Serving, type HealthServer } from '../../gen/grpc/health/v1/health';
import { GRPCBrokerService, GRPCControllerService, GRPCStdioService, type GRPCBrokerServer, type GRPCControllerServer, type GRPCStdioServer } from '../../gen/plugin/go_plugin';

export const MAGIC_COOKIE_KEY = 'NOMAD_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255';
export const CORE_PROTOCOL_VERSION = 1;
export const APP_PROTOCOL_VERSION = 2;

export class HandshakeError extends Error {}

/** The cookie proves Nomad (not a person) started us. */
export function checkCookie(env: NodeJS.ProcessEnv): void {
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    throw new HandshakeError(
      'This binary is a plugin. These are not meant to be executed directly.\n' +
        'Please execute the program that consumes these plugins, which will\n' +
        'load any plugins automatically (Nomad: put it in plugin_dir and add a\n' +
        'plugin "nomad-driver-exec2" block to the client configuration).\n' +
        'To try the driver without Nomad: nomad-driver-exec2 run -- COMMAND [ARGS...]\n',
    );
  }
}

/** Pick the highest protocol version both sides speak; we speak only 2. */
export function negotiateVersion(env: NodeJS.ProcessEnv): number {
  const raw = env.PLUGIN_PROTOCOL_VERSIONS;
  if (raw === undefined || raw.trim() === '') return APP_PROTOCOL_VERSION;
  const offered = raw.split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n));
  if (offered.includes(APP_PROTOCOL_VERSION)) return APP_PROTOCOL_VERSION;
  throw new HandshakeError(
    `Incompatible API version with plugin. Plugin version: ${APP_PROTOCOL_VERSION}, Client versions: ${raw}\n`,
  );
}

/**
 * Where a root plugin listens when the client does not say
 * (PLUGIN_UNIX_SOCKET_DIR): a root-only directory outside every path a task
 * can see. go-plugin's own default, the temp dir, is where tasks write, and a
 * root task ignores the socket's mode: anyone who reaches the socket can
 * reconfigure the plugin (SetConfig) and stop, exec into or start tasks.
 */
export const DEFAULT_SOCKET_DIR = '/run/nomad-driver-exec2/sockets';

/**
 * The socket's directory: PLUGIN_UNIX_SOCKET_DIR, else DEFAULT_SOCKET_DIR as
 * root (created 0700; refused unless it is a real directory of root's that
 * nobody else can enter), else (a plugin not run as root, which runs no
 * task) the temp dir like go-plugin.
 */
export function socketDirFor(env: NodeJS.ProcessEnv, uid = process.getuid?.() ?? -1): string {
  if (env.PLUGIN_UNIX_SOCKET_DIR) return env.PLUGIN_UNIX_SOCKET_DIR;
  if (uid !== 0) return env.TMPDIR || os.tmpdir() || '/tmp';
  mkdirSync(DEFAULT_SOCKET_DIR, { recursive: true, mode: 0o700 });
  const st = lstatSync(DEFAULT_SOCKET_DIR);
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o077) !== 0) {
    throw new HandshakeError(`refusing to listen in ${DEFAULT_SOCKET_DIR}: it must be a directory owned by root with mode 0700 (found ${st.isSymbolicLink() ? 'a symlink' : `uid ${st.uid} mode ${(st.mode & 0o7777).toString(8)}`})\n`);
  }
  return DEFAULT_SOCKET_DIR;
}

/** `<dir>/plugin<digits>` like go-plugin; must fit sun_path (107 bytes). */
export function socketPathFor(env: NodeJS.ProcessEnv, dir = socketDirFor(env)): string {
  for (let i = 0; i < 100; i++) {
    const p = path.join(dir, `plugin${randomInt(1e9, 1e10 - 1)}`);
    if (Buffer.byteLength(p) > 107) throw new HandshakeError(`socket path ${p} is longer than 107 bytes; set PLUGIN_UNIX_SOCKET_DIR to a shorter directory`);
    if (!existsSync(p)) return p;
  }
  throw new HandshakeError(`cannot find a free socket name in ${dir}`);
}

export function handshakeLine(socketPath: string, appVersion = APP_PROTOCOL_VERSION): string {
  return `${CORE_PROTOCOL_VERSION}|${appVersion}|unix|${socketPath}|grpc|\n`;
}

function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const out = execFileSync('getent', ['group', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const gid = Number(out.split(':')[2]);
  if (!Number.isInteger(gid)) throw new HandshakeError(`unknown group ${name} in PLUGIN_UNIX_SOCKET_GROUP`);
  return gid;
}

export function applySocketGroup(socketPath: string, env: NodeJS.ProcessEnv): void {
  const group = env.PLUGIN_UNIX_SOCKET_GROUP;
  if (!group) return;
  chownSync(socketPath, -1, groupId(group));
  chmodSync(socketPath, 0o660);
}

export interface GoPluginHooks {
  /** GRPCController/Shutdown: answer first, then stop. */
  onShutdown(): void;
}

export function addGoPluginServices(server: grpc.Server, hooks: GoPluginHooks): void {
  const health: HealthServer = {
    check(call, callback) {
      const svc = call.request.service;
      if (svc === '' || svc === 'plugin') callback(null, { status: Serving.SERVING });
      else callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${svc}"` });
    },
    watch(call) {
      const svc = call.request.service;
      call.write({ status: svc === '' || svc === 'plugin' ? Serving.SERVING : Serving.SERVICE_UNKNOWN });
      // Health never changes while we serve; hold the stream until the client leaves.
      call.on('cancelled', () => call.end());
    },
  };
  const controller: GRPCControllerServer = {
    shutdown(_call, callback) {
      callback(null, {});
      setImmediate(() => hooks.onShutdown());
    },
  };
  const broker: GRPCBrokerServer = {
    startStream(call) {
      // We broker nothing; keep the stream open so the client's broker stays quiet.
      call.on('data', () => undefined);
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  };
  const stdio: GRPCStdioServer = {
    streamStdio(call) {
      // Our stdout/stderr are never redirected here; open until cancelled.
      call.on('cancelled', () => call.end());
      call.on('error', () => undefined);
    },
  };
  server.addService(HealthService, health);
  server.addService(GRPCControllerService, controller);
  server.addService(GRPCBrokerService, broker);
  server.addService(GRPCStdioService, stdio);
}

export function removeSocket(socketPath: string): void {
  try {
    unlinkSync(socketPath);
  } catch {
    // already gone
  }
}
