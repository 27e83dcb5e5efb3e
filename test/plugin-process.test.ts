/** The process contract with go-plugin: handshake, logs, signals, shutdown. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../src/main/rpc/go-plugin';
import { call, PluginProcess, PLUGIN_BIN } from '../src/client/plugin-process';

const HCLOG_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

function assertHclogLines(p: PluginProcess): void {
  assert.ok(p.logs.length > 0, 'the plugin logged nothing');
  for (const l of p.logs) {
    assert.ok(l.json, `stderr line is not a JSON object: ${l.raw}`);
    assert.equal(typeof l.json['@level'], 'string', l.raw);
    assert.ok(LEVELS.includes(l.json['@level'] as string), `unknown @level in ${l.raw}`);
    assert.equal(typeof l.json['@message'], 'string', l.raw);
    assert.equal(typeof l.json['@module'], 'string', l.raw);
    assert.match(l.json['@timestamp'] as string, HCLOG_TS, l.raw);
  }
}

describe('go-plugin process contract', function () {
  let plugin: PluginProcess | undefined;
  afterEach(async () => {
    if (plugin) await plugin.kill();
    plugin = undefined;
  });

  it('prints exactly one handshake line naming a live unix socket', async () => {
    plugin = await PluginProcess.start();
    assert.match(plugin.handshake.raw, /^1\|2\|unix\|\/[^|]+\|grpc\|$/);
    assert.equal(plugin.handshake.core, 1);
    assert.equal(plugin.handshake.app, 2);
    assert.ok(plugin.socketExists());
    const h = await call(plugin.health, plugin.health.check, { service: 'plugin' });
    assert.equal(h.status, 1 /* SERVING */);
    await call(plugin.driver, plugin.driver.capabilities, {});
    assert.deepEqual(plugin.stdoutExtra, [], 'nothing may follow the handshake on stdout');
  });

  it('creates the socket in PLUGIN_UNIX_SOCKET_DIR when set', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'exec2-sock-'));
    try {
      plugin = await PluginProcess.start({ env: { PLUGIN_UNIX_SOCKET_DIR: dir } });
      assert.equal(path.dirname(plugin.handshake.address), dir);
      assert.match(path.basename(plugin.handshake.address), /^plugin\d+$/);
    } finally {
      await plugin?.kill();
      plugin = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to run without the magic cookie: message on stderr, exit 1, no stdout', () => {
    const env = { ...process.env };
    delete env[MAGIC_COOKIE_KEY];
    const r = spawnSync(PLUGIN_BIN, [], { env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /This binary is a plugin/);
  });

  it('refuses a wrong cookie the same way', () => {
    const r = spawnSync(PLUGIN_BIN, [], { env: { ...process.env, [MAGIC_COOKIE_KEY]: 'nope' }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /not meant to be executed directly/);
  });

  it('fails clearly when the client offers no protocol version we speak', () => {
    const r = spawnSync(PLUGIN_BIN, [], {
      env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '1,3' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '', 'no handshake line for an incompatible client');
    assert.match(r.stderr, /Incompatible API version.*Plugin version: 2, Client versions: 1,3/);
  });

  it('picks version 2 from a list that contains it', async () => {
    plugin = await PluginProcess.start({ protocolVersions: '1,2,3' });
    assert.equal(plugin.handshake.app, 2);
  });

  it('writes only go-hclog JSON lines with string fields and microsecond timestamps to stderr', async () => {
    plugin = await PluginProcess.start();
    // provoke a few log lines: a failing RPC and a shutdown
    await call(plugin.driver, plugin.driver.waitTask, { taskId: 'nope' }).catch(() => undefined);
    await plugin.kill();
    assertHclogLines(plugin);
  });

  it('ignores SIGINT like go-plugin (it shares the agent\'s process group)', async () => {
    plugin = await PluginProcess.start();
    process.kill(plugin.pid, 'SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(plugin.exited, null);
    const h = await call(plugin.health, plugin.health.check, { service: '' });
    assert.equal(h.status, 1);
  });

  it('exits within 2 s of GRPCController/Shutdown and removes its socket', async () => {
    plugin = await PluginProcess.start();
    const socket = plugin.handshake.address;
    const t0 = Date.now();
    const graceful = await plugin.kill();
    assert.ok(graceful, `plugin needed SIGKILL (waited ${Date.now() - t0} ms)`);
    assert.equal(plugin.exited?.code, 0);
    assert.equal(existsSync(socket), false, 'socket file left behind');
  });

  it('keeps serving after Driver.Shutdown (tasks must outlive that call)', async () => {
    plugin = await PluginProcess.start();
    await call(plugin.driver, plugin.driver.shutdown, {});
    const h = await call(plugin.health, plugin.health.check, { service: 'plugin' });
    assert.equal(h.status, 1);
  });

  it('answers the go-plugin stdio and broker streams without errors until cancelled', async () => {
    plugin = await PluginProcess.start();
    const { GRPCStdioClient, GRPCBrokerClient } = await import('../src/gen/plugin/go_plugin');
    const grpc = await import('@grpc/grpc-js');
    const target = `unix://${plugin.handshake.address}`;
    const stdio = new GRPCStdioClient(target, grpc.credentials.createInsecure());
    const broker = new GRPCBrokerClient(target, grpc.credentials.createInsecure());
    const s = stdio.streamStdio({});
    const b = broker.startStream();
    const errors: string[] = [];
    s.on('error', (e: ServiceError) => { if (e.code !== grpc.status.CANCELLED) errors.push(`stdio: ${String(e.code)}`); });
    b.on('error', (e: ServiceError) => { if (e.code !== grpc.status.CANCELLED) errors.push(`broker: ${String(e.code)}`); });
    await new Promise((r) => setTimeout(r, 300));
    s.cancel();
    b.cancel();
    await new Promise((r) => setTimeout(r, 50));
    stdio.close();
    broker.close();
    assert.deepEqual(errors, []);
  });
});
