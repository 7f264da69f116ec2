/**
 * A label or annotation key with '.' replaced by '_': `app.kubernetes.io/name` -> `app_kubernetes_io/name`.
 * Elasticsearch reads dots in field names as object paths, so undotted, `kubernetes.labels.app` (a keyword, from
 * label `app`) and `kubernetes.labels.app.kubernetes.io/name` (which needs `app` to be an object) cannot both be
 * mapped and every document of the second kind is rejected.
 */
export function dedotKey(key: string): string {
  return key.includes('.') ? key.replaceAll('.', '_') : key;
}

/**
 * The map with de-dotted keys, in sorted key order (so output is the same whatever order the API sent).
 * Two keys can de-dot to the same name (`a.b` and `a_b`); Elasticsearch rejects a document with a duplicate
 * key, so only one is kept: a key that was already free of dots wins, else the first in sort order.
 * Returns a null-prototype object so that no key, whatever it is, can reach Object.prototype.
 */
export function dedotRecord(record: Readonly<Record<string, string>>, dedot = true): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  const keys = Object.keys(record).sort();
  if (!dedot) {
    for (const key of keys) out[key] = record[key]!;
    return out;
  }
  // Keys without dots first, so that they win any collision.
  for (const key of keys) if (!key.includes('.')) out[key] = record[key]!;
  for (const key of keys) {
    if (!key.includes('.')) continue;
    const name = dedotKey(key);
    if (!(name in out)) out[name] = record[key]!;
  }
  // Sorted output, whatever order the two passes inserted in.
  const sorted: Record<string, string> = Object.create(null);
  for (const key of Object.keys(out).sort()) sorted[key] = out[key]!;
  return sorted;
}
