/**
 * How each unveil rule is resolved (planUnveil) and which of the plugin's
 * directories a rule would expose: pure decisions, no root needed.
 */
import assert from 'node:assert/strict';
import { parseUnveil, planUnveil, type PlannedRule } from '../../src/shared/unveil';
import { exposure } from '../../src/main/tasks/sandbox';

const spec = (r: PlannedRule): string => `${r.mode}${r.optional ? '?' : ''}${r.anchor ? '+' : ''}${r.beneath >= 0 ? `@${r.beneath}` : ''}:${r.path}`;
const rules = (...s: string[]) => s.map((x) => parseUnveil(x));

describe('unveil plan (how the init helper resolves each rule)', () => {
  it('anchors the task roots and every rwc dir, resolves each rule beneath its nearest anchor, and drops rules an ancestor already grants', () => {
    const plan = planUnveil(
      rules('rwxc:/m/a-t/local', 'rwxc:/m/a-t/alloc', 'rx:/m/a-t/alloc/logs', 'w:/d/a/alloc/logs/.t.stdout.fifo', 'rx:/usr/bin', 'r:/etc/ssl/certs', 'rwc:/srv/shared', 'rx:/srv/shared/bin'),
      ['/m/a-t', '/d/a'],
    );
    // Shallower first, so every anchor comes before what is resolved beneath it.
    assert.deepEqual(plan.rules.map(spec), [
      'rx:/usr/bin',
      'rwc+:/srv/shared', // anchor 0
      '+:/m/a-t', // anchor 1
      '+:/d/a', // anchor 2
      'rwxc+@1:/m/a-t/local', // anchor 3
      'rwxc+@1:/m/a-t/alloc', // anchor 4
      'r:/etc/ssl/certs',
      'rx@0:/srv/shared/bin',
      'w@2:/d/a/alloc/logs/.t.stdout.fifo',
    ]);
    // rx:/m/a-t/alloc/logs is gone: rwxc on alloc grants it already.
    assert.equal(plan.rules.some((r) => r.path === '/m/a-t/alloc/logs'), false);
    assert.equal(plan.beneath('/m/a-t'), 1, 'the default working directory is an anchor itself');
    assert.equal(plan.beneath('/m/a-t/local/work'), 3);
    assert.equal(plan.beneath('/etc'), -1);
  });

  it('keeps a rule below an optional ancestor (the ancestor may be skipped at run time) and never drops an anchor without an anchor above it', () => {
    const plan = planUnveil(rules('r:/', 'rwc:/opt/x'), ['/var/alloc', '/opt/x/alloc']);
    // r:/ grants reading everything but resolves nothing safely: /var/alloc stays an anchor;
    // /opt/x/alloc is not needed, the anchor /opt/x above it resolves everything below safely.
    assert.deepEqual(plan.rules.map(spec), ['r:/', 'rwc+:/opt/x', '+:/var/alloc']);
    const opt = planUnveil([{ path: '/srv', mode: 'rwxc', optional: true }, ...rules('r:/srv/a')], []);
    assert.deepEqual(opt.rules.map(spec), ['rwxc?+:/srv', 'r@0:/srv/a']);
  });

  it('turns "r" on /proc/self/... into "r" on the task\'s private /proc and keeps other letters precise', () => {
    const plan = planUnveil(rules('r:/proc/self/cmdline', 'r:/proc/thread-self/mountinfo', 'rw:/proc/self/attr/current'), []);
    assert.deepEqual(plan.rules.map(spec), ['r?:/proc', 'w:/proc/self/attr/current']);
  });

  it('merges duplicate paths (union of letters; optional only when every copy is)', () => {
    const plan = planUnveil([{ path: '/etc/hosts', mode: 'r', optional: true }, { path: '/etc/hosts', mode: 'w', optional: false }], []);
    assert.deepEqual(plan.rules.map(spec), ['rw:/etc/hosts']);
  });

  it('refuses more anchors than the init helper keeps open', () => {
    const many = Array.from({ length: 70 }, (_, i) => `rwc:/data/d${i}`);
    assert.throws(() => planUnveil(rules(...many), []), /at most 64/);
  });
});

describe("the plugin's own directories", () => {
  const hidden = ['/run/nomad-driver-exec2'];
  it('refuses a rule that names them or lets a task write there, and allows read-only rules above them (the mount namespace hides them)', () => {
    assert.match(exposure(rules('r:/run/nomad-driver-exec2/sockets'), hidden) ?? '', /would be exposed by the unveiled path "r:\/run\/nomad-driver-exec2\/sockets"/);
    assert.match(exposure(rules('rwc:/run'), hidden) ?? '', /"rwc:\/run"/);
    assert.equal(exposure(rules('r:/', 'r:/run'), hidden), null);
    assert.equal(exposure(rules('rwc:/run/nomad-driver-exec2-other'), hidden), null);
  });
});
