/**
 * Dynamic workload users as a hostile job author picks them: `nomad-0`
 * (root), ids outside the client's range, and ids that belong to an
 * existing account or group are all refused at StartTask with a message
 * naming the user and the range; the range itself is validated.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { NomadLikeClient } from '../../src/client/nomad-client';
import { PluginProcess } from '../../src/client/plugin-process';
import { expectStatus } from '../harness/assert-status';
import { startNomadOrSkip } from '../harness/skip';
import { Canary, runToEnd } from './helpers';

function getent(db: 'passwd' | 'group'): Array<{ name: string; id: number }> {
  return execFileSync('getent', [db], { encoding: 'utf8' }).trim().split('\n').map((l) => {
    const f = l.split(':');
    return { name: f[0]!, id: Number(f[2]) };
  });
}

describe('security: dynamic workload users cannot be root or someone else', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;
  let canary: Canary;

  before(async function () {
    nomad = await startNomadOrSkip(this);
    canary = new Canary();
  });

  afterEach(() => canary?.assertUnchanged());

  after(async () => {
    canary?.remove();
    if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  async function refused(user: string, code: grpc.status, re: RegExp): Promise<void> {
    const task = nomad.prepareTask({ user, command: 'sh', args: ['-c', 'id; touch /tmp/exec2-should-not-run'] });
    try {
      await expectStatus(nomad.startTask(task), code, re);
      assert.equal(existsSync('/tmp/exec2-should-not-run'), false, 'the refused task ran');
    } finally {
      nomad.releaseTask(task);
    }
  }

  it('refuses nomad-0 and every id outside the range, naming the user and the range', async () => {
    for (const user of ['nomad-0', 'nomad-00', 'nomad-79999', 'nomad-90000', 'nomad-65534', 'nomad-4294967295', 'nomad-99999999999999999999']) {
      await refused(user, grpc.status.INVALID_ARGUMENT, new RegExp(`user "${user}": dynamic workload users must have an id in 80000-89999 \\(the plugin options dynamic_user_min and dynamic_user_max\\)`));
    }
  });

  it('accepts the ends of the range and runs as exactly that uid and gid', async () => {
    for (const id of [80000, 89999]) {
      const r = await runToEnd(nomad, { user: `nomad-${id}`, command: 'sh', args: ['-c', 'id -u; id -g; id -G'] });
      assert.equal(r.exit, 0, r.err);
      assert.deepEqual(r.out.trim().split('\n'), [String(id), String(id), String(id)]);
    }
  });

  describe('with a range that overlaps this host\'s accounts (dynamic_user_min = 1)', () => {
    let saved: PluginProcess;
    let wide: PluginProcess;

    before(async () => {
      saved = nomad.plugin;
      wide = await PluginProcess.start();
      nomad.plugin = wide;
      await nomad.configure({ dynamic_user_min: 1, dynamic_user_max: 89999 });
    });

    after(async () => {
      await wide?.kill();
      if (saved) nomad.plugin = saved;
    });

    it('refuses the uid of an existing account (nobody) and names the account', async () => {
      const nobody = getent('passwd').find((u) => u.name === 'nobody')!;
      await refused(`nomad-${nobody.id}`, grpc.status.FAILED_PRECONDITION, new RegExp(`user "nomad-${nobody.id}": uid ${nobody.id} belongs to the account "nobody" in the passwd database`));
      // daemon: uid 1, the lowest id the range allows
      await refused('nomad-1', grpc.status.FAILED_PRECONDITION, /uid 1 belongs to the account "daemon"/);
    });

    it('refuses a gid that belongs to a group even when no account has that uid', async () => {
      const uids = new Set(getent('passwd').map((u) => u.id));
      const g = getent('group').find((x) => x.id > 0 && x.id <= 89999 && !uids.has(x.id));
      assert.ok(g, 'this host has no group whose gid is no account\'s uid');
      await refused(`nomad-${g.id}`, grpc.status.FAILED_PRECONDITION, new RegExp(`gid ${g.id} belongs to the group "${g.name}" in the group database`));
    });

    it('still refuses nomad-0, whatever the range', async () => {
      await refused('nomad-0', grpc.status.INVALID_ARGUMENT, /dynamic workload users must have an id in 1-89999/);
    });
  });

  it('refuses a range that includes 0 or is upside down, at SetConfig', async () => {
    const p = await PluginProcess.start();
    const saved = nomad.plugin;
    nomad.plugin = p;
    try {
      for (const [cfg, re] of [
        [{ dynamic_user_min: 0 }, /attribute "dynamic_user_min": 0 is not an integer between 1 and 2147483647/],
        [{ dynamic_user_min: 90000, dynamic_user_max: 80000 }, /dynamic_user_min \(90000\) is above dynamic_user_max \(80000\)/],
        [{ dynamic_user_max: 2 ** 32 }, /attribute "dynamic_user_max": 4294967296 is not an integer/],
      ] as const) {
        await assert.rejects(nomad.configure(cfg), (e: grpc.ServiceError) => {
          assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
          assert.match(e.details, re);
          return true;
        });
      }
    } finally {
      await p.kill();
      nomad.plugin = saved;
    }
  });
});
