import { configDefaults, defineConfig } from 'vitest/config';

// The inode-reuse tests make ext4 hand a freed inode number to their next file; files other test
// files create at the same moment take those numbers. They run alone (`npm run test:inode-reuse`,
// part of `npm test`), after the parallel run.
const ALONE = ['test/integration/inode-reuse.test.ts'];

export default defineConfig({
  test: {
    include: process.env.LOGFERRY_TEST_ALONE === '1' ? ALONE : ['test/**/*.test.ts'],
    exclude:
      process.env.LOGFERRY_TEST_ALONE === '1'
        ? configDefaults.exclude
        : [...configDefaults.exclude, ...ALONE],
    // Integration tests spawn the built CLI; build once before any test file runs.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
