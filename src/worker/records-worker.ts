// A records worker thread: holds the FileProcessors of the files pinned to it and processes their
// chunks (split, parse, multiline, fields, filters, encode) as the main thread sends them.
import { parentPort, workerData } from 'node:worker_threads';
import { bodyPool } from '../parse/body-pool.ts';
import { FileProcessor, type ProcessorEvents } from '../parse/file-processor.ts';
import { RecordTransforms } from '../transform/resolve.ts';
import type { FromWorker, ToWorker, WorkerData, WorkerEvents } from './protocol.ts';

const data = workerData as WorkerData;
const port = parentPort!;

function freshEvents(): WorkerEvents {
  return { lines: 0, parseErrors: {}, splits: 0, filtered: 0, truncated: 0, throttled: [] };
}

let counted = freshEvents();
const events: ProcessorEvents = {
  linesRead: (n) => {
    counted.lines += n;
  },
  parseError: (kind) => {
    counted.parseErrors[kind] = (counted.parseErrors[kind] ?? 0) + 1;
  },
  lineSplit: () => {
    counted.splits++;
  },
  recordsFiltered: (n) => {
    counted.filtered += n;
  },
  recordsTruncated: (n) => {
    counted.truncated += n;
  },
};

const transforms =
  data.records === undefined
    ? undefined
    : new RecordTransforms(data.records, {
        throttle: {
          throttled: (ns, action, lines, bytes) => counted.throttled.push([ns, action, lines, bytes]),
        },
        // the main thread validated the same options and warns about annotations itself
        warn: () => {},
      });

interface Open {
  processor: FileProcessor;
  path: string;
}
const files = new Map<number, Open>();

/** A body the main thread can own: its own ArrayBuffer, never a slice of Node's shared pool. */
function ownBody(body: Buffer): { buffer: ArrayBuffer; offset: number; length: number } | undefined {
  if (body.length === 0) return undefined;
  if (body.length < Buffer.poolSize >>> 1) {
    const copy = Buffer.allocUnsafeSlow(body.length);
    body.copy(copy);
    return { buffer: copy.buffer as ArrayBuffer, offset: 0, length: copy.length };
  }
  return { buffer: body.buffer as ArrayBuffer, offset: body.byteOffset, length: body.length };
}

port.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'open': {
      const processor = new FileProcessor(msg.ctx, msg.opts, events, msg.resume);
      if (transforms !== undefined) processor.transform = transforms.forFile(msg.path, msg.meta);
      files.set(msg.id, { processor, path: msg.path });
      return;
    }
    case 'ctx':
      if (files.has(msg.id)) files.get(msg.id)!.processor.context = msg.ctx;
      return;
    case 'format':
      files.get(msg.id)?.processor.setFormat(msg.format);
      return;
    case 'meta': {
      const f = files.get(msg.id);
      if (f !== undefined && transforms !== undefined)
        f.processor.transform = transforms.forFile(f.path, msg.meta);
      return;
    }
    case 'reset':
      files.get(msg.id)?.processor.reset();
      return;
    case 'close':
      files.delete(msg.id);
      return;
    case 'recycle':
      bodyPool.put(msg.buf);
      return;
    case 'process': {
      const f = files.get(msg.id);
      try {
        if (f === undefined) throw new Error(`records worker: file ${msg.id} is not open`);
        const buf = Buffer.from(msg.buf, 0, msg.buf.byteLength);
        const res = f.processor.process(buf, msg.len, msg.base, msg.final, msg.flush);
        const body = ownBody(res.body);
        const out: FromWorker = {
          t: 'result',
          id: msg.id,
          seq: msg.seq,
          buf: msg.buf,
          body,
          ends: res.ends,
          offsets: res.offsets,
          framed: res.framed,
          consumed: res.consumed,
          safeEnd: res.safeEnd,
          continuation: res.continuation,
          format: f.processor.format,
          pendingGroups: f.processor.hasPendingGroups,
          events: counted,
        };
        counted = freshEvents();
        port.postMessage(out, body === undefined ? [msg.buf] : [msg.buf, body.buffer]);
      } catch (err) {
        const out: FromWorker = {
          t: 'error',
          id: msg.id,
          seq: msg.seq,
          message: err instanceof Error ? (err.stack ?? err.message) : String(err),
          buf: msg.buf,
        };
        port.postMessage(out, [msg.buf]);
      }
      return;
    }
  }
});
