import type { Suite } from '../config.ts';
import { browserSuite } from './browser.ts';
import { burstSuite } from './burst.ts';
import type { BenchSuite } from './context.ts';
import { membersSuite } from './members.ts';
import { microSuite } from './micro.ts';
import { overheadSuite } from './overhead.ts';
import { projectsSuite } from './projects.ts';
import { webhooksSuite } from './webhooks.ts';
import { workerdSuite } from './workerd.ts';
import { wsSuite } from './ws.ts';
import { zipfSuite } from './zipf.ts';

/** Every measurement of `make bench`, by the name `SUITE=` takes, in run order. */
export const BENCH_SUITES: Record<Suite, BenchSuite> = {
  micro: microSuite,
  overhead: overheadSuite,
  members: membersSuite,
  projects: projectsSuite,
  burst: burstSuite,
  zipf: zipfSuite,
  webhooks: webhooksSuite,
  ws: wsSuite,
  workerd: workerdSuite,
  browser: browserSuite,
};
