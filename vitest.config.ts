import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // test/ holds the harnesses and the suites that span folders; web/'s page and middleware tests sit beside their code.
    include: ['test/**/*.test.ts', 'web/**/*.test.{ts,tsx}'],
    // Backstops only: tests wait for observable states, never for time to pass (see test/helpers/processes.ts).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Integration suites spawn coordinators and agents; two at a time keeps a 2-core box honest.
    maxWorkers: 2,
    allowOnly: false,
  },
});
