// Unit tests only, without building dist/ first: `npx vitest run -c vitest.unit.config.ts test/unit/...`
// (a quick loop while developing; `npm test` runs everything).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
