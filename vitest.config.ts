import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{system,fixtures,bench,load,traces,dashboards,test}/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start real servers (sqld); two cores, so keep parallelism modest.
    maxWorkers: 2,
  },
});
