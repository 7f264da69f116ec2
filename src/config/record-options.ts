// Schemas of the structured record options (multiline rules, custom parsers, filters) and the
// checks across options that a schema alone cannot make (a rule or parser name must exist, a regex
// must compile on the RE2 engine). Used by the loader and by `check-config`.
import { z } from 'zod';

const NAME = /^[a-z0-9][a-z0-9_.-]*$/;
const name = z.string().regex(NAME, 'expected a lower-case name (letters, digits, _ . -)');

export const multilineRulesSchema = z.array(
  z.strictObject({ path: z.string().min(1, 'expected a path glob'), rule: z.string().min(1) }),
);

export const multilineCustomSchema = z.record(
  name,
  z
    .strictObject({ start: z.string().min(1).optional(), continuation: z.string().min(1).optional() })
    .refine((r) => r.start !== undefined || r.continuation !== undefined, {
      message: 'needs start, continuation or both (regexes)',
    }),
);

/** `workers`: auto, or a whole number (in YAML a number or a string of digits). */
export const workersSchema = z.union([
  z.literal('auto'),
  z.number().int().min(0).max(64),
  z.string().regex(/^\d+$/),
]);

export const parsersSchema = z.array(z.strictObject({ name, regex: z.string().min(1) }));

// Filter steps are checked in full by transform/filters.ts (parseFilters), with problems that name
// the step; the file schema only requires a list.
export const filtersSchema: z.ZodType = z.array(z.unknown());
