import { describe, expect, it } from 'vitest';
import { CacheLookups } from './zipf.ts';

describe("the Zipf mix's cache lookups", () => {
  it('leave the first miss of each key out of the warm hit ratio, and nothing else', () => {
    const lookups = new CacheLookups();
    lookups.count('/a', 'miss'); // cold
    lookups.count('/a', 'hit');
    lookups.count('/a', 'hit');
    lookups.count('/a', 'miss'); // invalidated: warm
    lookups.count('/b', 'miss'); // cold
    lookups.count('/b', 'stale'); // warm, not a hit
    lookups.count('/b', 'hit');
    expect(lookups.summary()).toEqual({
      reads: 7,
      hitRatio: 3 / 7,
      warmHitRatio: 3 / 5,
      coldMisses: 2,
    });
  });

  it('count a read without X-Cache (no cache level on the route) as no lookup', () => {
    const lookups = new CacheLookups();
    lookups.count('/a', null);
    expect(lookups.summary()).toEqual({
      reads: 1,
      hitRatio: null,
      warmHitRatio: null,
      coldMisses: 0,
    });
    // the key was read: its next miss is not cold
    lookups.count('/a', 'miss');
    expect(lookups.summary()).toMatchObject({ coldMisses: 0, warmHitRatio: 0 });
  });
});
