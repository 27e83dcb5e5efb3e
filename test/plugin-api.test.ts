/** BasePlugin and Driver metadata RPCs as Nomad calls them. */
import assert from 'node:assert/strict';
import { encode } from '@msgpack/msgpack';
import * as grpc from '@grpc/grpc-js';
import { PluginType } from '../src/gen/hashicorp/nomad/plugins/base/base';
import { FingerprintResponse_HealthState as Health, TaskConfig, type FingerprintResponse } from '../src/gen/hashicorp/nomad/plugins/drivers/driver';
import { call, PluginProcess } from '../src/client/plugin-process';
import { encodePluginConfig, topology } from '../src/client/nomad-client';
import { IN_CI, isRoot } from './harness/skip';
import { detectCgroupLayout } from '../src/shared/cgroups/detect';
import { expectStatus } from './harness/assert-status';

const attr = (name: string, type: string, required = false) => ({ Attr: { name, type, required } });
const dflt = (primary: object, value: string) => ({ default: { primary, default: { literal: { value } } } });


describe('plugin API: identity, schemas, config, fingerprint', function () {
  let plugin: PluginProcess;
  before(async () => {
    plugin = await PluginProcess.start();
  });
  after(async () => {
    await plugin.kill();
  });

  it('identifies as the exec2 DRIVER speaking plugin API 0.1.0', async () => {
    const info = await call(plugin.base, plugin.base.pluginInfo, {});
    assert.equal(info.type, PluginType.DRIVER);
    assert.deepEqual(info.pluginApiVersions, ['v0.1.0']);
    assert.equal(info.name, 'exec2');
    assert.match(info.pluginVersion, /^v?\d+\.\d+\.\d+/);
  });

  it('publishes the plugin config schema exactly', async () => {
    const r = await call(plugin.base, plugin.base.configSchema, {});
    assert.deepEqual(plain(r.spec), {
      object: {
        attributes: {
          unveil_defaults: dflt(attr('unveil_defaults', 'bool'), 'true'),
          unveil_by_task: dflt(attr('unveil_by_task', 'bool'), 'false'),
          unveil_paths: attr('unveil_paths', 'list(string)'),
          state_dir: dflt(attr('state_dir', 'string'), '"/run/nomad-driver-exec2"'),
          metrics_address: attr('metrics_address', 'string'),
          metrics_per_task: dflt(attr('metrics_per_task', 'bool'), 'false'),
          private_tmp: dflt(attr('private_tmp', 'bool'), 'true'),
          allow_caps: dflt(attr('allow_caps', 'list(string)'), '["audit_write","chown","dac_override","fowner","fsetid","kill","mknod","net_bind_service","setfcap","setgid","setpcap","setuid","sys_chroot"]'),
          dynamic_user_min: dflt(attr('dynamic_user_min', 'number'), '80000'),
          dynamic_user_max: dflt(attr('dynamic_user_max', 'number'), '89999'),
          pids_max: dflt(attr('pids_max', 'number'), '4096'),
          scope_abstract_unix_sockets: dflt(attr('scope_abstract_unix_sockets', 'bool'), 'true'),
        },
      },
    });
  });

  it('publishes the task config schema exactly', async () => {
    const r = await call(plugin.driver, plugin.driver.taskConfigSchema, {});
    assert.deepEqual(plain(r.spec), {
      object: {
        attributes: {
          command: attr('command', 'string', true),
          args: attr('args', 'list(string)'),
          unveil: attr('unveil', 'list(string)'),
          oom_score_adj: attr('oom_score_adj', 'number'),
          work_dir: attr('work_dir', 'string'),
          cap_add: attr('cap_add', 'list(string)'),
          cap_drop: attr('cap_drop', 'list(string)'),
          pids_max: attr('pids_max', 'number'),
        },
      },
    });
  });

  it('advertises the exec2 capabilities', async () => {
    const r = await call(plugin.driver, plugin.driver.capabilities, {});
    assert.deepEqual(r.capabilities, {
      sendSignals: true,
      exec: true,
      fsIsolation: 3, // UNVEIL
      networkIsolationModes: [3, 0, 1], // NONE, HOST, GROUP
      mustCreateNetwork: false,
      mountConfigs: 0, // ANY_MOUNTS: host and CSI volumes
      disableLogCollection: false,
      dynamicWorkloadUsers: true,
    });
  });

  describe('SetConfig', () => {
    it('accepts the validation probe without nomad_config and keeps no state', async () => {
      const p = await PluginProcess.start();
      try {
        await call(p.base, p.base.setConfig, { msgpackConfig: Buffer.from(encodePluginConfig({ unveil_by_task: true })), pluginApiVersion: '0.1.0' });
        // Still unconfigured: StartTask refuses, the fingerprint reports the defaults.
        await expectStatus(call(p.driver, p.driver.startTask, { task: TaskConfig.fromPartial({ id: 'a/b/c', name: 'b' }) }), grpc.status.FAILED_PRECONDITION, /not configured/);
        const fp = await firstFingerprint(p);
        assert.equal(fp.attributes['driver.exec2.unveil.tasks']?.boolVal, false);
      } finally {
        await p.kill();
      }
    });

    it('takes the real config with nomad_config and shows it in the fingerprint', async () => {
      const p = await PluginProcess.start();
      try {
        await call(p.base, p.base.setConfig, {
          msgpackConfig: Buffer.from(encodePluginConfig({ unveil_by_task: true, unveil_defaults: false, unveil_paths: ['r:/etc/hosts'] })),
          nomadConfig: { driver: { ClientMaxPort: 0, ClientMinPort: 0, Topology: topology(2) } },
          pluginApiVersion: '0.1.0',
        });
        const fp = await firstFingerprint(p);
        assert.equal(fp.attributes['driver.exec2.unveil.tasks']?.boolVal, true);
        assert.equal(fp.attributes['driver.exec2.unveil.defaults']?.boolVal, false);
      } finally {
        await p.kill();
      }
    });

    const bad: Array<[string, Uint8Array, RegExp]> = [
      ['malformed msgpack', Uint8Array.from([0xc1, 0xff, 0x00]), /plugin config: malformed msgpack/],
      ['truncated msgpack', Uint8Array.from([0x83, 0xae]), /plugin config: malformed msgpack/],
      ['an empty payload', new Uint8Array(0), /plugin config: empty msgpack payload/],
      ['a non-object', encode([1, 2]), /plugin config: expected an object, got a list/],
      ['a wrong type for unveil_defaults', encode({ unveil_defaults: 'yes', unveil_by_task: false, unveil_paths: null }), /attribute "unveil_defaults": expected bool, got a string/],
      ['a wrong element type in unveil_paths', encode({ unveil_defaults: true, unveil_by_task: false, unveil_paths: [1] }), /attribute "unveil_paths"\[0\]: expected string, got a number/],
      ['an unknown attribute', encode({ unveil_defaults: true, colour: 'blue' }), /unknown attribute "colour"/],
      ['an invalid unveil mode', encode({ unveil_paths: ['rz:/etc'] }), /attribute "unveil_paths"\[0\]: unveil "rz:\/etc": invalid mode "rz"/],
      ['a relative unveil path', encode({ unveil_paths: ['r:etc'] }), /attribute "unveil_paths"\[0\]: .*must be absolute/],
      ['a metrics address without a port', encode({ metrics_address: 'localhost' }), /attribute "metrics_address": "localhost" is not host:port/],
      ['a relative state_dir', encode({ state_dir: 'run/x' }), /attribute "state_dir": "run\/x" must be an absolute path/],
    ];
    for (const [what, bytes, re] of bad) {
      it(`rejects ${what} with INVALID_ARGUMENT naming the problem, and keeps serving`, async () => {
        await expectStatus(
          call(plugin.base, plugin.base.setConfig, { msgpackConfig: Buffer.from(bytes), pluginApiVersion: '0.1.0' }),
          grpc.status.INVALID_ARGUMENT,
          re,
        );
        const h = await call(plugin.health, plugin.health.check, { service: 'plugin' });
        assert.equal(h.status, 1);
      });
    }

    it('accepts numbers and nulls the way cty encodes them', async () => {
      // cty sends every attribute, nulls included, keys sorted; order must not matter.
      await call(plugin.base, plugin.base.setConfig, {
        msgpackConfig: Buffer.from(encode({ unveil_paths: null, unveil_by_task: null, unveil_defaults: null, state_dir: null })),
        pluginApiVersion: '0.1.0',
      });
    });
  });

  describe('Fingerprint', () => {
    it('sends the first message at once and describes this host honestly', async () => {
      const t0 = Date.now();
      const fp = await firstFingerprint(plugin);
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 30_000, `first fingerprint took ${elapsed} ms`);
      assert.equal(fp.err, '');
      for (const k of ['driver.exec2.unveil.defaults', 'driver.exec2.unveil.tasks', 'driver.exec2.landlock.abi', 'driver.exec2.cgroup.mode']) {
        assert.ok(fp.attributes[k], `missing attribute ${k}`);
      }
      const abi = fp.attributes['driver.exec2.landlock.abi']!.intVal!;
      // The plugin runs with the default allow_caps and abstract-socket scope.
      assert.equal(fp.attributes['driver.exec2.allow_caps']?.stringVal, 'chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,sys_chroot,mknod,audit_write,setfcap');
      assert.equal(fp.attributes['driver.exec2.landlock.scopes']?.stringVal, abi >= 6 ? 'abstract_unix_socket,signal' : '');
      assert.equal(fp.attributes['driver.exec2.pids_max']?.intVal, 4096);
      // as this host's mount table says (the plugin reads the same file)
      assert.equal(fp.attributes['driver.exec2.cgroup.favordynmods']?.boolVal, detectCgroupLayout().favorDynmods);
      const mode = fp.attributes['driver.exec2.cgroup.mode']!.stringVal!;
      assert.ok(['v1', 'v2', 'hybrid', 'none'].includes(mode));
      // CI machines are root with Landlock and cgroups: there the driver must be usable.
      const healthy = IN_CI || (isRoot() && abi >= 1 && mode !== 'none');
      if (healthy) {
        assert.equal(fp.health, Health.HEALTHY, fp.healthDescription);
        assert.equal(fp.healthDescription, 'Healthy');
      } else {
        assert.notEqual(fp.health, Health.HEALTHY);
        assert.ok(fp.healthDescription.length > 10, 'an unhealthy fingerprint must say what is missing');
      }
    });
  });
});

/** Decoded messages carry explicit undefined for unset oneof members. */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

function firstFingerprint(p: PluginProcess): Promise<FingerprintResponse> {
  return new Promise((resolve, reject) => {
    const s = p.driver.fingerprint({});
    s.once('data', (m: FingerprintResponse) => {
      resolve(m);
      s.cancel();
    });
    s.on('error', (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED) reject(e);
    });
  });
}
