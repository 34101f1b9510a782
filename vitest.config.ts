import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Backstops only: tests wait for observable states, never for time to pass (see test/helpers/processes.ts).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Integration suites spawn coordinators and agents; two at a time keeps a 2-core box honest.
    maxWorkers: 2,
    allowOnly: false,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          // test/unit holds the suites that span folders; web/'s page and middleware tests sit beside their code.
          include: ['test/unit/**/*.test.ts', 'web/**/*.test.{ts,tsx}'],
          // In-process tests that leave no module state behind (no vi.mock, timers and env put
          // back): a worker reuses the modules it loaded for the next file instead of importing
          // everything again per file. Measured on 2 cores: test/unit 60 → 39 s of CPU, web/
          // 73 → 44 s.
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          // Real child processes; some mock modules (vi.mock) or fake timers: each file in a fresh worker.
          include: ['test/integration/**/*.test.ts'],
          setupFiles: ['test/helpers/failed-test-logs.ts'],
        },
      },
    ],
  },
});
