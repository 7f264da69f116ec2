/**
 * OpenSearch has no `flattened` type. `flat_object` (OpenSearch 2.7 and later) keeps the promise the
 * Elasticsearch templates make with `flattened`: the whole object is one field in the mapping, its
 * leaves are indexed as keywords, so one application's `user: "bob"` never gets another's
 * `user: {...}` rejected and the mapping never grows with application keys. The cost (docs/opensearch.md):
 * leaves are strings (no numeric ranges, no aggregations on `json.*` in 2.x), and it takes no
 * `depth_limit` or `ignore_above` parameters. Everything else in the template is the same
 * (sink/elasticsearch/templates.ts).
 */
export const FLAT_OBJECT: Readonly<Record<string, unknown>> = { type: 'flat_object' };
