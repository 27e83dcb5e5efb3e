/**
 * The Nomad-like client (src/client/) as the tests use it: task cgroups from
 * the test fixture (below this process's own cgroup, exec2-test-*), data
 * and state dirs named exec2-nomad-*.
 */
import { NomadLikeClient, type ClientOptions } from '../../src/client/nomad-client';
import { CgroupFixture } from './cgroups';

export function testClient(opts: Omit<ClientOptions, 'cgroups'> = {}): NomadLikeClient {
  const cgroups = new CgroupFixture();
  try {
    return new NomadLikeClient({ name: 'exec2-nomad', ...opts, cgroups });
  } catch (err) {
    cgroups.cleanup();
    throw err;
  }
}
