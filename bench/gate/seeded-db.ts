import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchSetup } from '../../load/bench-setup.ts';

export interface SeededFixture {
  /** The seeded template; every server gets its own copy. */
  dbFile: string;
  setup: Awaited<ReturnType<typeof benchSetup>>;
  copy(): string;
}

/** One freshly seeded bench database per gate run: every server starts from the same data. */
export async function seededDatabase(
  cleanups: Array<() => void | Promise<void>>,
): Promise<SeededFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'gate-db-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const dbFile = join(dir, 'seed.db');
  const setup = await benchSetup(`file:${dbFile}`);
  let copies = 0;
  return {
    dbFile,
    setup,
    copy() {
      const file = join(dir, `server-${++copies}.db`);
      copyFileSync(dbFile, file);
      return file;
    },
  };
}
