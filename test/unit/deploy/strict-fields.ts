import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * kubernetes-models' validate() checks types, enums and required fields but lets unknown fields
 * through, and Kubernetes drops (or, with kubectl's strict validation, refuses) them: a typo such
 * as `readOnlyRootFileSystem` would pass validate() and silently leave the root filesystem writable.
 * This walks a manifest along the same package's TypeScript declarations (one interface per .d.ts
 * file, properties at four spaces of indentation, object types imported by name) and reports every
 * field that the Kubernetes API does not declare at that place. Free-form maps (labels, annotations,
 * ConfigMap data, resource quantities) are declared as inline `{ [key: string]: ... }` and are not
 * descended into.
 */

/** property name -> declaration file of its object type, or undefined for scalars and free-form maps */
type Shape = Map<string, string | undefined>;

const shapes = new Map<string, Shape | undefined>();

function resolveImport(from: string, specifier: string): string | undefined {
  if (specifier.startsWith('.')) return resolve(dirname(from), `${specifier.replace(/\.js$/, '')}.d.ts`);
  const parts = specifier.split('/');
  const nameParts = specifier.startsWith('@') ? 2 : 1;
  const pkg = parts.slice(0, nameParts).join('/');
  const rest = parts.slice(nameParts).join('/');
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', pkg, `${rest}.d.ts`);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The interface declared in a .d.ts file; undefined for a type alias (IntOrString, Quantity, Time). */
export function shapeOf(file: string): Shape | undefined {
  if (shapes.has(file)) return shapes.get(file);
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";/gm)) {
    for (const name of m[1]!.split(',')) {
      const local = name
        .trim()
        .split(/\s+as\s+/)
        .at(-1)!;
      imports.set(local, m[2]!);
    }
  }
  const body = /^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m.exec(text)?.[1];
  let shape: Shape | undefined;
  if (body !== undefined) {
    shape = new Map();
    for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
      const ref = /^(?:Array<)?(\w+)>?;$/.exec(m[2]!)?.[1];
      const specifier = ref === undefined ? undefined : imports.get(ref);
      shape.set(m[1]!, specifier === undefined ? undefined : resolveImport(file, specifier));
    }
  }
  shapes.set(file, shape);
  return shape;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Paths (`spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem`) of undeclared fields. */
export function undeclaredFields(value: unknown, declarationFile: string, path = ''): string[] {
  const shape = shapeOf(declarationFile);
  if (shape === undefined || !isObject(value)) return [];
  const problems: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const at = path === '' ? key : `${path}.${key}`;
    if (!shape.has(key)) {
      problems.push(at);
      continue;
    }
    const childFile = shape.get(key);
    if (childFile === undefined) continue;
    if (Array.isArray(child)) {
      child.forEach((item, i) => {
        problems.push(...undeclaredFields(item, childFile, `${at}[${i}]`));
      });
    } else {
      problems.push(...undeclaredFields(child, childFile, at));
    }
  }
  return problems;
}
