// Enrichment's say over a followed file: its pod's fields and parser, or that it is not followed.
import { errorMessage } from '../errors.ts';
import type { FileMetadata, Format } from '../pipeline/types.ts';
import type { TailContext, Tracked } from './tracked.ts';

/** A file opened: read it now, or once enrichment first answered. */
export function begin(ctx: TailContext, f: Tracked): void {
  if (ctx.deps.enricher !== undefined) {
    void describe(ctx, f);
    return;
  }
  f.ready = true;
  ctx.enqueue(f);
}

/**
 * Asks enrichment about a file; the file is read only after the first answer (which may wait a
 * bounded time for its pod). A provisional answer is asked again, without waiting, as it reads.
 */
export async function describe(ctx: TailContext, f: Tracked): Promise<void> {
  if (f.describing) return;
  f.describing = true;
  f.lastDescribeMs = Date.now();
  let meta: FileMetadata | undefined;
  try {
    meta = await ctx.deps.enricher!.describe(f.source);
  } catch (err) {
    ctx.warnOnce(`describe:${f.key}`, `metadata for ${f.source.path} failed: ${errorMessage(err)}`);
  } finally {
    f.describing = false;
  }
  if (!ctx.registry.holds(f) || f.state === 'closing') return;
  if (meta?.exclude) {
    ctx.registry.exclude(f);
    f.state = 'closing';
    f.finalizing = true;
    ctx.maybeRelease(f);
    ctx.idleMaybe();
    return;
  }
  if (meta !== undefined) {
    f.meta = meta;
    f.source.fields = meta.fields;
    f.work.setContext(ctx.contextFor(f.source, meta.fragment));
    if (meta.parser !== undefined && ctx.opts.format === 'auto' && isFormat(meta.parser)) {
      f.work.setFormat(meta.parser);
    }
    // a later answer (the pod became known) may bring annotations: the processor keeps a
    // multiline group in progress
    f.work.setMeta(meta);
  }
  f.metaComplete = meta?.complete ?? false;
  f.ready = true;
  ctx.enqueue(f);
}

const FORMATS: readonly string[] = ['cri', 'docker', 'json', 'text'];

function isFormat(name: string): name is Format {
  return FORMATS.includes(name);
}
