/** Parsing of cgroup and /proc stat texts for TaskStats. */
import assert from 'node:assert/strict';
import { parseNumber, parsePids, parsePidStat, parseUintBytes, pickKeyed, pickKeyedBytes } from '../../src/main/stats/parse';
import { pidsDue, PIDS_REFRESH_MS } from '../../src/main/stats/collector';

describe('stats parsing', () => {
  it('pickKeyed takes whole keys at line starts only', () => {
    const v1 = 'cache 4096\nrss 8192\nrss_huge 0\nshmem 0\ntotal_cache 12288\ntotal_rss 16384\n';
    assert.deepEqual(pickKeyed(v1, ['rss', 'total_rss', 'cache', 'total_cache', 'swap'] as const), { rss: 8192, total_rss: 16384, cache: 4096, total_cache: 12288 });
    // "rss" appears first inside "total_rss" here: still the line that is exactly rss
    assert.deepEqual(pickKeyed('total_rss 5\nrss 7', ['rss'] as const), { rss: 7 });
    assert.deepEqual(pickKeyed('usage_usec 10\nuser_usec 6\nsystem_usec 4\n', ['usage_usec', 'user_usec', 'system_usec', 'nr_periods'] as const), {
      usage_usec: 10, user_usec: 6, system_usec: 4,
    });
    assert.deepEqual(pickKeyed('', ['a'] as const), {});
    assert.deepEqual(pickKeyed('a x\n', ['a'] as const), {}, 'not a number: absent');
  });

  it('pickKeyed equals a full parse on a real-shaped v2 memory.stat', () => {
    const lines = ['anon 1052672', 'file 4096', 'kernel 303104', 'kernel_stack 16384', 'anon_thp 0', 'file_mapped 0', 'workingset_refault_anon 0'];
    const text = `${lines.join('\n')}\n`;
    const full = new Map(lines.map((l) => l.split(' ') as [string, string]));
    const got = pickKeyed(text, ['anon', 'file', 'kernel'] as const);
    assert.deepEqual(got, { anon: Number(full.get('anon')), file: Number(full.get('file')), kernel: Number(full.get('kernel')) });
  });

  it('pickKeyedBytes agrees with pickKeyed, without a string of the text', () => {
    const texts = [
      'cache 4096\nrss 8192\nrss_huge 0\ntotal_cache 12288\ntotal_rss 16384\n',
      'total_rss 5\nrss 7',
      'usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n',
      '', '\n\n', 'a x\n', 'rss\nrss 3\n', 'rss 1\nrss 2\n',
    ];
    const keys = ['rss', 'total_rss', 'cache', 'total_cache', 'usage_usec', 'user_usec', 'nr_periods', 'a'] as const;
    for (const t of texts) {
      const b = Buffer.from(`${t}garbage after the end`, 'latin1');
      assert.deepEqual(pickKeyedBytes(b, t.length, keys), pickKeyed(t, keys), JSON.stringify(t));
    }
  });

  it('parseUintBytes: what parseNumber gives for the kernel\'s unsigned values', () => {
    for (const t of ['123\n', '0\n', 'max\n', '', '\n', ' 42 ', '18446744073709551615\n']) {
      assert.equal(parseUintBytes(Buffer.from(t), 0, t.length), parseNumber(t), JSON.stringify(t));
    }
  });

  it('parseNumber: numbers, and null for max, empty and unreadable', () => {
    assert.equal(parseNumber('123\n'), 123);
    assert.equal(parseNumber('max\n'), null);
    assert.equal(parseNumber(''), null);
    assert.equal(parseNumber(null), null);
  });

  it('parsePids: positive integers only', () => {
    assert.deepEqual(parsePids('1\n42\n'), [1, 42]);
    assert.deepEqual(parsePids('1\n\nx\n-3\n0\n7'), [1, 7]);
    assert.deepEqual(parsePids(null), []);
  });

  it('parsePidStat: fields after the last parenthesis, so a hostile comm cannot shift them', () => {
    const tail = 'S 1 1 1 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 1 0 12345 4096000 321 18446744073709551615';
    assert.deepEqual(parsePidStat(`77 (sleep) ${tail}\n`), { utimeTicks: 250, stimeTicks: 30, rssPages: 321 });
    assert.deepEqual(parsePidStat(`77 (a) b) 9 9 (c) ${tail}\n`), { utimeTicks: 250, stimeTicks: 30, rssPages: 321 });
    assert.equal(parsePidStat('77 (short) S 1 2'), null);
    assert.equal(parsePidStat('garbage'), null);
  });
});

describe('per-pid cadence', () => {
  it('reads per-pid entries on the first two samples, then every PIDS_REFRESH_MS', () => {
    assert.equal(pidsDue(0, 0, undefined), true, 'first: seeds the counters');
    assert.equal(pidsDue(1, 1000, 0), true, 'second: first real per-pid rates');
    assert.equal(pidsDue(2, 2000, 1000), false);
    assert.equal(pidsDue(10, 1000 + PIDS_REFRESH_MS - 1, 1000), false);
    assert.equal(pidsDue(11, 1000 + PIDS_REFRESH_MS, 1000), true);
    assert.equal(pidsDue(5, 5000, undefined), true, 'never read yet');
  });
});
