/** cty-msgpack encoding and decoding against the worked examples of spec §4.3. */
import assert from 'node:assert/strict';
import { decodeObject, encodeObject, CtyDecodeError } from '../../src/main/config/cty';
import { DEFAULT_PLUGIN_CONFIG, PLUGIN_CONFIG_SCHEMA, TASK_CONFIG_SCHEMA, parsePluginConfig, parseTaskConfig } from '../../src/main/config/config';
import { DriverError } from '../../src/shared/errors';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const str = (s: string): string => Buffer.from(s).toString('hex');

describe('cty msgpack', () => {
  it('decodes the exec2 default plugin config bytes from the spec', () => {
    const bytes = hex(`83 ae${str('unveil_by_task')} c2 af${str('unveil_defaults')} c3 ac${str('unveil_paths')} c0`);
    assert.deepEqual(parsePluginConfig(bytes), { unveilDefaults: true, unveilByTask: false, unveilPaths: [], stateDir: '/run/nomad-driver-exec2', metricsAddress: null, metricsPerTask: false, allowCaps: DEFAULT_PLUGIN_CONFIG.allowCaps, dynamicUserMin: 80000, dynamicUserMax: 89999, pidsMax: 4096, scopeAbstractUnixSockets: true, privateTmp: true });
  });

  it('decodes `command = "env"` as Nomad encodes it', () => {
    const bytes = hex(`84 a4${str('args')} c0 a7${str('command')} a3${str('env')} ad${str('oom_score_adj')} c0 a6${str('unveil')} c0`);
    assert.deepEqual(parseTaskConfig(bytes), { command: 'env', args: [], unveil: [], oomScoreAdj: null, workDir: null, capAdd: [], capDrop: [], pidsMax: null });
  });

  it('decodes the cat example with a uint16 oom_score_adj', () => {
    const bytes = hex(`84 a4${str('args')} 91 af${str('/etc/os-release')} a7${str('command')} a3${str('cat')} ad${str('oom_score_adj')} cd 01 f4 a6${str('unveil')} 90`);
    assert.deepEqual(parseTaskConfig(bytes), { command: 'cat', args: ['/etc/os-release'], unveil: [], oomScoreAdj: 500, workDir: null, capAdd: [], capDrop: [], pidsMax: null });
  });

  it('accepts numbers sent as decimal strings, uint64 and float64', () => {
    const schema = { n: { type: 'number' as const } };
    assert.equal(decodeObject(hex(`81 a1${str('n')} a3${str('0.1')}`), schema, 'x').n, 0.1);
    assert.equal(decodeObject(hex(`81 a1${str('n')} cf 00 00 01 00 00 00 00 00`), schema, 'x').n, 2 ** 40);
    assert.equal(decodeObject(hex(`81 a1${str('n')} cb 3f e0 00 00 00 00 00 00`), schema, 'x').n, 0.5);
    assert.equal(decodeObject(hex(`81 a1${str('n')} d1 ff 38`), schema, 'x').n, -200);
  });

  it('rejects a uint64 beyond exact JS range for a number attribute', () => {
    const schema = { n: { type: 'number' as const } };
    assert.throws(() => decodeObject(hex(`81 a1${str('n')} cf ff ff ff ff ff ff ff ff`), schema, 'x'), /out of range/);
  });

  it('reports unknown cty values (ext type 0) by attribute', () => {
    const schema = { command: { type: 'string' as const, required: true } };
    assert.throws(() => decodeObject(hex(`81 a7${str('command')} d4 00 00`), schema, 'task config'), (e: Error) => {
      assert.ok(e instanceof CtyDecodeError);
      assert.match(e.message, /task config: attribute "command": expected string, got an unknown value/);
      return true;
    });
  });

  it('encodes like go-cty: sorted keys, nulls present, smallest integers', () => {
    const bytes = encodeObject({ command: 'cat', args: ['/etc/os-release'], unveil: [], oom_score_adj: 500 }, TASK_CONFIG_SCHEMA);
    assert.equal(
      Buffer.from(bytes).toString('hex'),
      `88a4${str('args')}91af${str('/etc/os-release')}a7${str('cap_add')}c0a8${str('cap_drop')}c0a7${str('command')}a3${str('cat')}ad${str('oom_score_adj')}cd01f4a8${str('pids_max')}c0a6${str('unveil')}90a8${str('work_dir')}c0`,
    );
    assert.equal(Buffer.from(encodeObject({ n: 200000 }, {})).toString('hex'), `81a1${str('n')}ce00030d40`);
    assert.equal(Buffer.from(encodeObject({ n: -1 }, {})).toString('hex'), `81a1${str('n')}ff`);
    assert.equal(Buffer.from(encodeObject({ z: '1', a: '2' }, {})).toString('hex'), `82a1${str('a')}a1${str('2')}a1${str('z')}a1${str('1')}`);
  });

  it('round-trips the plugin config through encode and decode', () => {
    const bytes = encodeObject({ unveil_defaults: false, unveil_by_task: true, unveil_paths: ['rx:/opt/bin'] }, PLUGIN_CONFIG_SCHEMA);
    assert.deepEqual(parsePluginConfig(bytes), { unveilDefaults: false, unveilByTask: true, unveilPaths: ['rx:/opt/bin'], stateDir: '/run/nomad-driver-exec2', metricsAddress: null, metricsPerTask: false, allowCaps: DEFAULT_PLUGIN_CONFIG.allowCaps, dynamicUserMin: 80000, dynamicUserMax: 89999, pidsMax: 4096, scopeAbstractUnixSockets: true, privateTmp: true });
  });
});

describe('task config validation', () => {
  const enc = (v: Record<string, unknown>): Uint8Array => encodeObject(v as never, TASK_CONFIG_SCHEMA);
  const rejects = (v: Record<string, unknown>, re: RegExp): void => {
    assert.throws(() => parseTaskConfig(enc(v)), (e: Error) => {
      assert.ok(e instanceof DriverError);
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.match(e.message, re);
      return true;
    });
  };
  it('requires command', () => rejects({}, /attribute "command" is required/));
  it('rejects an empty command', () => rejects({ command: '  ' }, /"command" must not be empty/));
  it('rejects a fractional or negative oom_score_adj', () => {
    rejects({ command: 'x', oom_score_adj: 1.5 }, /oom_score_adj.*between 0 and 1000/);
    rejects({ command: 'x', oom_score_adj: -5 }, /oom_score_adj.*between 0 and 1000/);
    rejects({ command: 'x', oom_score_adj: 1001 }, /oom_score_adj.*between 0 and 1000/);
  });
  it('keeps a relative work_dir relative (the sandbox anchors it at the task dir) and refuses one that climbs out', () => {
    const workDir = (w: string): string | null => parseTaskConfig(encodeObject({ command: 'x', work_dir: w }, TASK_CONFIG_SCHEMA)).workDir;
    assert.equal(workDir('local'), 'local');
    assert.equal(workDir('./local/sub/'), 'local/sub');
    assert.equal(workDir('/srv//app/'), '/srv/app');
    rejects({ command: 'x', work_dir: '../other-task' }, /"work_dir": "\.\.\/other-task" leaves the task directory/);
    rejects({ command: 'x', work_dir: 'local/../../x' }, /"work_dir": "local\/\.\.\/\.\.\/x" leaves the task directory/);
    rejects({ command: 'x', work_dir: '..' }, /leaves the task directory/);
    rejects({ command: 'x', work_dir: '' }, /"work_dir" must not be empty/);
  });
  it('rejects malformed unveil entries with their index', () => rejects({ command: 'x', unveil: ['r:/ok', 'q:/bad'] }, /"unveil"\[1\]: unveil "q:\/bad": invalid mode/));
  it('rejects NUL bytes in args', () => rejects({ command: 'x', args: ['a', 'b\0c'] }, /"args"\[1\] contains a NUL byte/));
});
