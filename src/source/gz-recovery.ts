import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { documentContext } from '../encode/document.ts';
import { recycleLocally } from '../parse/body-pool.ts';
import { FileProcessor, type ProcessorEvents } from '../parse/file-processor.ts';
import type { Budget, Enricher, FileMetadata, FormatOption, Sink, SourceFile } from '../pipeline/types.ts';
import type { Transforms } from '../transform/types.ts';
import { AckTracker } from './ack-tracker.ts';
import type { CheckpointEntry } from './checkpointer.ts';
import { type Fingerprint, fingerprintBytes } from './fingerprint.ts';

/** Decompresses the first `bytes` of a gzip file and fingerprints them, as the original file was. */
export async function gzFingerprint(path: string, bytes: number): Promise<Fingerprint> {
  const head = Buffer.alloc(bytes);
  let got = 0;
  const stream = createReadStream(path).pipe(createGunzip());
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const n = Math.min(chunk.length, bytes - got);
      chunk.copy(head, got, 0, n);
      got += n;
      if (got >= bytes) break;
    }
  } finally {
    stream.destroy();
  }
  return fingerprintBytes(head, got);
}

/** The uncompressed size modulo 2^32 from a gzip file's trailer (ISIZE), or undefined. */
export async function gzUncompressedSize(path: string): Promise<number | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (fh === undefined) return undefined;
  try {
    const { size } = await fh.stat();
    if (size < 18) return undefined;
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, size - 4);
    return buf.readUInt32LE(0);
  } finally {
    await fh.close();
  }
}

export interface GzRecoveryDeps {
  budget: Budget;
  sink: Sink;
  events: ProcessorEvents;
  enricher?: Enricher | undefined;
  transforms?: Transforms | undefined;
  format: FormatOption;
  maxLineBytes: number;
  readChunkBytes: number;
  hostName: string;
  /** the checkpoint moved (acknowledged records); persist it */
  onCommitted(entry: CheckpointEntry): void;
  stopped(): boolean;
}

/**
 * Reads what was not yet shipped of a file that kubelet rotated and gzipped while logferry was
 * stopped: the decompressed stream from the checkpoint's offset to its end, through the same
 * processor, under the original file's identity, so document ids and offsets are those the plain
 * file would have given. Resolves once everything read is acknowledged (or reading stopped).
 */
export async function recoverGz(path: string, entry: CheckpointEntry, deps: GzRecoveryDeps): Promise<number> {
  const source: SourceFile = {
    key: `${entry.dev}:${entry.ino}`,
    path,
    identity: { dev: entry.dev, ino: entry.ino, id: entry.id },
  };
  let meta: FileMetadata | undefined;
  if (deps.enricher !== undefined) {
    meta = await deps.enricher.describe(source);
    if (meta.exclude) return 0;
    source.fields = meta.fields;
  }
  const processor = new FileProcessor(
    documentContext(
      path,
      deps.hostName,
      meta?.fragment ?? '',
      deps.transforms?.fields,
      deps.sink.frame?.(source),
    ),
    { format: deps.format, maxLineBytes: deps.maxLineBytes },
    deps.events,
    { format: entry.format, continuation: entry.continuation },
  );
  // the same records the plain file would have given: same multiline groups, parsers and filters
  if (deps.transforms !== undefined) processor.transform = deps.transforms.forFile(path, meta);
  let outstanding = 0;
  let allSent = false;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const tracker = new AckTracker(entry.offset, entry.continuation, (committed, delta) => {
    deps.budget.release(delta);
    entry.offset = committed;
    entry.continuation = tracker.continuation;
    entry.format = processor.format;
    deps.onCommitted(entry);
  });
  const settle = () => {
    if (allSent && outstanding === 0) resolveDone();
  };

  const buf = Buffer.allocUnsafe(deps.readChunkBytes);
  let len = 0;
  let base = entry.offset;
  let pos = 0; // decompressed offset of the next byte of the stream
  const flush = (final: boolean) => {
    const res = processor.process(buf, len, base, final);
    deps.budget.acquire(res.consumed);
    const ackEntry = tracker.add(res.safeEnd, res.continuation);
    if (res.ends.length === 0) tracker.ack(ackEntry);
    else {
      outstanding++;
      deps.sink.write({
        file: source,
        body: res.body,
        ends: res.ends,
        offsets: res.offsets,
        framed: res.framed,
        ack: () => {
          recycleLocally(res.body);
          tracker.ack(ackEntry);
          outstanding--;
          settle();
        },
      });
    }
    buf.copy(buf, 0, res.consumed, len);
    len -= res.consumed;
    base += res.consumed;
  };

  // the checkpoint entry moves while this runs (acknowledgements); where to start is fixed now
  const startOffset = entry.offset;
  const stream = createReadStream(path).pipe(createGunzip());
  let read = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (deps.stopped()) break;
      let c = chunk;
      if (pos + c.length <= startOffset) {
        pos += c.length;
        continue;
      }
      if (pos < startOffset) {
        c = c.subarray(startOffset - pos);
        pos = startOffset;
      }
      pos += c.length;
      while (c.length > 0) {
        const n = Math.min(c.length, buf.length - len);
        c.copy(buf, len, 0, n);
        len += n;
        read += n;
        c = c.subarray(n);
        if (len === buf.length) {
          await deps.budget.waitForRoom();
          flush(false);
        }
      }
    }
    if (!deps.stopped()) {
      await deps.budget.waitForRoom();
      flush(true);
    }
  } finally {
    stream.destroy();
  }
  allSent = true;
  settle();
  if (!deps.stopped()) await done;
  return read;
}
