import { fingerprintBytes, truncatedId } from './fingerprint.ts';
import type { TailContext, Tracked } from './tracked.ts';

/** A reader's chunk buffer; processing in a worker thread hands back a (transferred) buffer. */
export interface Reader {
  buf: Buffer;
}

/**
 * One read of one file, the way from bytes on disk to a batch for the sink: read a chunk at the
 * file's position, split, parse and encode it (here or in a worker thread), charge the body to the
 * budget, hand the batch to the sink, and register it with the ack tracker that moves the
 * checkpoint. Returns true when the file likely has more to read right away.
 */
export async function readStep(ctx: TailContext, f: Tracked, reader: Reader): Promise<boolean> {
  const { deps, opts } = ctx;
  const buf = reader.buf;
  const fh = f.fh;
  if (fh === undefined || f.state === 'closing') return false;
  if (f.truncated) restartFromZero(ctx, f);
  const { bytesRead } = await fh.read(buf, 0, buf.length, f.readPos);
  const end = f.readPos + bytesRead;
  if (end > f.seen) {
    deps.events.bytesRead(end - f.seen);
    f.seen = end;
    f.lastGrowthMs = Date.now();
  }
  if (end > f.size) f.size = end;
  const full = bytesRead === buf.length;
  const final = f.finalizing && !full;
  // pending multiline groups go out after the file was silent for the flush interval, and in
  // once mode at the end of the file (it is read to its current end, nothing waits for more)
  const flushGroups = (f.flushDue && bytesRead === 0) || (opts.once && !full);
  f.flushDue = false;
  const res = await f.work.process(buf, bytesRead, f.readPos, final, flushGroups);
  reader.buf = res.buffer;
  // The budget counts what waits in memory: the body's whole allocation (encoded documents, several
  // times the bytes read once pod metadata is added; the encoder sizes it ahead and copies it out
  // exactly when over a quarter is unused), released as each batch is acknowledged.
  const cost = res.body.length === 0 ? 0 : res.body.buffer.byteLength;
  deps.budget.acquire(cost);
  f.held += cost;
  f.readPos += res.consumed;
  if (final) f.seen = f.readPos;
  const tracker = f.tracker;
  const entry = tracker.add(res.safeEnd, res.continuation);
  // the body's memory goes back to the thread that wrote it (this file's work, even if reopened)
  const work = f.work;
  if (res.ends.length === 0) {
    tracker.ack(entry);
  } else {
    deps.sink.write({
      file: f.source,
      body: res.body,
      ends: res.ends,
      offsets: res.offsets,
      framed: res.framed,
      ack: () => {
        work.recycle(res.body);
        if (f.tracker === tracker) {
          f.held -= cost;
          deps.budget.release(cost);
        }
        tracker.ack(entry);
        if (f.state === 'closing') ctx.maybeRelease(f);
      },
    });
  }
  if (final) {
    f.state = 'closing';
    ctx.maybeRelease(f);
    return false;
  }
  if (!full) f.eof = true;
  const transforms = deps.transforms;
  if (transforms !== undefined && res.consumed > 0) {
    const wait = transforms.pauseAfter(f.source.path, f.meta, res.ends.length, res.consumed);
    if (wait > 0) {
      ctx.pause(f, wait);
      return false;
    }
  }
  return full;
}

/**
 * copytruncate: the file shrank below what we read; read it again from its start, under a new id
 * (its offsets start over: see truncatedId) and with the fingerprint of its new first bytes.
 */
function restartFromZero(ctx: TailContext, f: Tracked): void {
  f.truncated = false;
  ctx.deps.events.rotated(f.source.path, 'truncate');
  const id = truncatedId(f.source.identity.id);
  f.source = { ...f.source, key: id, identity: { ...f.source.identity, id } };
  f.work.setContext(ctx.contextFor(f.source, f.meta?.fragment ?? ''));
  f.verify = fingerprintBytes(Buffer.alloc(0), 0);
  ctx.deps.budget.release(f.held);
  f.held = 0;
  f.tracker = ctx.newTracker(f, 0, undefined);
  f.work.reset();
  f.readPos = 0;
  f.seen = 0;
  ctx.markDirty();
}
