import { writeFileSync } from 'node:fs';
import { renderConfigReference } from './docs.ts';

// `npm run docs`: regenerates docs/configuration.md from the option table.
writeFileSync(new URL('../../docs/configuration.md', import.meta.url), renderConfigReference());
