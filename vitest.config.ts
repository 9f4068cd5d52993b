import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Test files start their own Redis servers and listeners on free ports;
    // two workers keep the 2-core machine responsive.
    pool: 'forks',
    maxWorkers: 2,
  },
});
