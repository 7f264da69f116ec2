import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Deterministic kubelet-style CRI workloads. The same (version, seed, lines) always gives the same
 * bytes, so figures from different commits are comparable. Bump when the output changes: cached
 * files carry it in their names.
 */
export const GENERATOR_VERSION = 2;

export const CACHE_DIR = join(tmpdir(), 'logferry-bench');

/** What a generated file holds, counted while writing it: the expectations a run is checked against. */
export interface WorkloadMeta {
  generatorVersion: number;
  seed: number;
  /** physical CRI lines */
  lines: number;
  bytes: number;
  /** logical records: lines minus the `P` fragments joined into the line that ends them */
  records: number;
  /** records whose message is a JSON object (they get a `json` field) */
  jsonRecords: number;
  /** records joined from `P` fragments (flagged `partial`) */
  partialRecords: number;
  /** `P` lines */
  partialLines: number;
  /** lines that belong to a multi-line stack trace (one record each: logferry does no multiline grouping) */
  traceLines: number;
  textRecords: number;
  stderrLines: number;
}

export interface CriFile {
  path: string;
  meta: WorkloadMeta;
  /** true when the file came from the cache */
  cached: boolean;
}

export interface TreeFile {
  path: string;
  namespace: string;
  pod: string;
  uid: string;
  container: string;
  meta: WorkloadMeta;
}

export interface CriTree {
  dir: string;
  files: TreeFile[];
  lines: number;
  records: number;
  bytes: number;
  cached: boolean;
}

/** mulberry32: tiny, fast and good enough to vary log text; the point is determinism. */
class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += HEX[this.int(16)];
    return s;
  }
}

const HEX = '0123456789abcdef';

// --- vocabulary ---------------------------------------------------------------------------------

const METHODS = ['GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;
const RESOURCES = [
  'orders',
  'products',
  'carts',
  'customers',
  'payments',
  'shipments',
  'invoices',
  'reviews',
];
const NAMESPACES = ['shop', 'payments', 'identity', 'catalog', 'search', 'kube-system', 'monitoring'];
const STATUSES = [200, 200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 404, 404, 409, 500, 502, 503];
const SERVICES = ['checkout', 'cart', 'catalog', 'payments', 'identity', 'search', 'shipping', 'frontend'];
const USER_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
  'kube-probe/1.31',
  'Go-http-client/1.1',
  'okhttp/4.12.0',
  'python-requests/2.32.3',
  'curl/8.5.0',
];
const CITIES = ['Berlin', 'Lyon', 'Porto', 'Zürich', 'São Paulo', 'Kraków', 'Malmö', '東京', 'Москва'];
const THREADS = [
  'main',
  'nio-8080-exec-1',
  'nio-8080-exec-3',
  'nio-8080-exec-7',
  'scheduling-1',
  'kafka-consumer-2',
];
const JAVA_CLASSES = [
  'c.e.shop.orders.OrderService',
  'c.e.shop.cart.CartController',
  'o.s.web.servlet.DispatcherServlet',
  'c.e.shop.payments.PaymentGateway',
  'o.h.engine.jdbc.spi.SqlExceptionHelper',
  'c.z.hikari.pool.HikariPool',
];
const JAVA_LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'WARN'] as const;
const SQL = [
  'SELECT id, name, price_cents, currency FROM products WHERE category_id = $1 ORDER BY rank LIMIT 50',
  'UPDATE carts SET updated_at = now(), version = version + 1 WHERE id = $1 AND version = $2',
  'INSERT INTO orders (id, customer_id, total_cents, currency, status) VALUES ($1, $2, $3, $4, $5)',
  'SELECT o.id, o.status, s.tracking_no FROM orders o JOIN shipments s ON s.order_id = o.id WHERE o.customer_id = $1',
];
const ERRORS = [
  'dial tcp 10.96.0.12:8080: connect: connection refused',
  'context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
  'rpc error: code = Unavailable desc = upstream connect error or disconnect/reset before headers',
  'pq: duplicate key value violates unique constraint "orders_pkey"',
];
const EVENTS = [
  'order created',
  'payment authorized',
  'cart updated',
  'shipment label printed',
  'session refreshed',
  'cache miss',
];
const KLOG_MESSAGES = [
  '"Successfully synced" key="shop/cart-0"',
  '"Reconciling" controller="deployment" namespace="shop" name="checkout"',
  '"Updated lease" lease="kube-system/kube-controller-manager"',
  '"Pod status updated" pod="catalog/catalog-6f7d9c5b8-2xk9p" status="Running"',
];
const JAVA_FRAMES = [
  'com.example.shop.cart.CartService.add(CartService.java:142)',
  'com.example.shop.cart.CartController.post(CartController.java:57)',
  'org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)',
  'jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)',
  'org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)',
  'org.springframework.web.filter.OncePerRequestFilter.doFilter(OncePerRequestFilter.java:116)',
  'org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:1736)',
  'java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1144)',
  'com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)',
  'org.hibernate.engine.jdbc.internal.LogicalConnectionManagedImpl.acquireConnectionIfNeeded(LogicalConnectionManagedImpl.java:113)',
];
const JAVA_EXCEPTIONS = [
  'java.lang.IllegalStateException: cart is locked by another request',
  'java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 30000ms.',
  'org.springframework.dao.DataIntegrityViolationException: could not execute statement',
  'java.lang.NullPointerException: Cannot invoke "com.example.shop.model.Customer.getId()" because "customer" is null',
];

// --- time ---------------------------------------------------------------------------------------

/** Epoch ms of 2026-11-22T08:00:00Z: the first line's timestamp. */
const START_MS = Date.UTC(2026, 10, 22, 8, 0, 0);

/** A clock advancing by random steps, formatted as Go's RFC3339Nano (trailing zeros trimmed) like containerd. */
class Clock {
  #sec = START_MS / 1000;
  #ns = 0;
  #secText = '';
  #secTextFor = -1;

  advance(rng: Rng): void {
    // ~1,000 lines per second on average, in bursts
    this.#ns += rng.chance(0.2) ? rng.int(5_000_000) : rng.int(600_000);
    while (this.#ns >= 1e9) {
      this.#ns -= 1e9;
      this.#sec++;
    }
  }

  /** 2026-11-22T08:00:04 */
  secondText(): string {
    if (this.#secTextFor !== this.#sec) {
      this.#secTextFor = this.#sec;
      this.#secText = new Date(this.#sec * 1000).toISOString().slice(0, 19);
    }
    return this.#secText;
  }

  rfc3339Nano(): string {
    if (this.#ns === 0) return `${this.secondText()}Z`;
    let frac = String(this.#ns).padStart(9, '0');
    let end = frac.length;
    while (frac.charCodeAt(end - 1) === 0x30) end--;
    frac = frac.slice(0, end);
    return `${this.secondText()}.${frac}Z`;
  }

  /** 2026-11-22T08:00:04.123Z */
  isoMillis(): string {
    return `${this.secondText()}.${String(Math.floor(this.#ns / 1e6)).padStart(3, '0')}Z`;
  }

  /**
   * Epoch seconds as zap writes `ts`: a float64 in its shortest round-trip form (Go's
   * strconv 'f', -1 and JavaScript's String(number) agree), usually 16 or 17 digits.
   */
  epochSeconds(): string {
    return String(this.#sec + this.#ns / 1e9);
  }

  epochNanos(): string {
    return `${this.#sec}${String(this.#ns).padStart(9, '0')}`;
  }

  /** 2026-11-22 08:00:04.123 */
  javaTime(): string {
    return `${this.secondText().replace('T', ' ')}.${String(Math.floor(this.#ns / 1e6)).padStart(3, '0')}`;
  }

  /** 22/Nov/2026:08:00:04 +0000 */
  clfTime(): string {
    const d = new Date(this.#sec * 1000);
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const p = (n: number) => String(n).padStart(2, '0');
    return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  }

  /** klog header time: 1122 08:00:04.123456 */
  klogTime(): string {
    const t = this.secondText();
    return `${t.slice(5, 7)}${t.slice(8, 10)} ${t.slice(11)}.${String(Math.floor(this.#ns / 1000)).padStart(6, '0')}`;
  }
}

// --- messages -----------------------------------------------------------------------------------

function apiPath(rng: Rng): string {
  const ns = rng.pick(NAMESPACES);
  const res = rng.pick(RESOURCES);
  return rng.chance(0.7)
    ? `/api/v1/namespaces/${ns}/${res}/${rng.range(1000, 999999)}`
    : `/api/v1/${res}?page=${rng.range(1, 40)}&limit=50&sort=created_at`;
}

function duration(rng: Rng): string {
  return (rng.int(250_000) / 1000).toFixed(rng.range(1, 3));
}

function jsonMessage(rng: Rng, clock: Clock): { text: string; stderr: boolean } {
  const kind = rng.int(100);
  const user = `u-${rng.range(1, 99999)}`;
  if (kind < 40) {
    // zap-style access log
    const status = rng.pick(STATUSES);
    const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
    const msg = status >= 500 ? 'request failed' : 'request completed';
    return {
      text: `{"level":"${level}","ts":${clock.epochSeconds()},"msg":"${msg}","http":{"method":"${rng.pick(METHODS)}","path":"${apiPath(rng)}","status":${status},"duration_ms":${duration(rng)}},"user":{"id":"${user}"},"trace_id":"${rng.hex(32)}"}`,
      stderr: status >= 500,
    };
  }
  if (kind < 62) {
    // logrus-style business event
    const city = rng.chance(0.05) ? rng.pick(CITIES) : 'Berlin';
    return {
      text: `{"time":"${clock.isoMillis()}","level":"info","msg":"${rng.pick(EVENTS)}","service":"${rng.pick(SERVICES)}","order":{"id":"o-${rng.range(100000, 999999)}","items":${rng.range(1, 12)},"total":${(rng.int(50000) / 100).toFixed(2)},"currency":"EUR"},"user":{"id":"${user}","city":"${city}"}}`,
      stderr: false,
    };
  }
  if (kind < 80) {
    // database query log
    return {
      text: `{"level":"debug","ts":"${clock.isoMillis()}","logger":"db","msg":"query","db":{"system":"postgresql","statement":"${rng.pick(SQL)}","rows":${rng.range(0, 50)},"duration_ms":${duration(rng)}}}`,
      stderr: false,
    };
  }
  if (kind < 90) {
    // error with escaped quotes and a retry counter
    return {
      text: `{"level":"error","ts":${clock.epochSeconds()},"caller":"client/retry.go:88","msg":"upstream request failed","error":"${rng.pick(ERRORS).replaceAll('"', '\\"')}","retry":${rng.range(0, 5)},"http":{"method":"POST","path":"${apiPath(rng)}","status":503}}`,
      stderr: true,
    };
  }
  if (kind < 98) {
    // controller-runtime / klog JSON
    return {
      text: `{"ts":${clock.epochSeconds()},"caller":"controller/controller.go:${rng.range(100, 350)}","msg":"Reconcile successful","v":2,"controller":"${rng.pick(['deployment', 'replicaset', 'statefulset'])}","object":{"name":"${rng.pick(SERVICES)}-${rng.hex(5)}","namespace":"${rng.pick(NAMESPACES)}"},"reconcileID":"${rng.hex(8)}"}`,
      stderr: false,
    };
  }
  // numbers a double cannot hold (nanosecond clocks, 64-bit ids): the slower exact-number path
  return {
    text: `{"level":"info","ts_ns":${clock.epochNanos()},"msg":"span finished","span":{"id":${rng.range(1, 9) * 1e17 + rng.int(1e9)},"name":"${rng.pick(EVENTS)}","duration_ms":${duration(rng)}}}`,
    stderr: false,
  };
}

function textMessage(rng: Rng, clock: Clock): { text: string; stderr: boolean } {
  const kind = rng.int(100);
  if (kind < 45) {
    const status = rng.pick(STATUSES);
    return {
      text: `10.244.${rng.range(0, 7)}.${rng.range(2, 254)} - - [${clock.clfTime()}] "${rng.pick(METHODS)} ${apiPath(rng)} HTTP/1.1" ${status} ${rng.range(0, 65536)} "-" "${rng.pick(USER_AGENTS)}" ${(rng.int(2000) / 1000).toFixed(3)}`,
      stderr: false,
    };
  }
  if (kind < 80) {
    const level = rng.pick(JAVA_LEVELS);
    return {
      text: `${clock.javaTime()}  ${level.padStart(5)} 1 --- [${rng.pick(THREADS).padStart(15)}] ${rng.pick(JAVA_CLASSES).padEnd(40)} : ${rng.pick(EVENTS)} id=o-${rng.range(100000, 999999)} customer=u-${rng.range(1, 99999)} in ${rng.range(1, 900)} ms`,
      stderr: level === 'WARN',
    };
  }
  if (kind < 92) {
    return {
      text: `I${clock.klogTime()}       1 ${rng.pick(['controller.go', 'reflector.go', 'leaderelection.go'])}:${rng.range(100, 900)}] ${rng.pick(KLOG_MESSAGES)} duration="${duration(rng)}ms"`,
      stderr: true,
    };
  }
  return {
    text: `${clock.javaTime().replace('.', ',')} INFO [worker.tasks] processed job ${rng.range(1, 999999)} from queue ${rng.pick(['emails', 'thumbnails', 'exports'])} in ${(rng.int(5000) / 1000).toFixed(2)}s`,
    stderr: false,
  };
}

function stackTrace(rng: Rng, clock: Clock): string[] {
  const out = [
    `${clock.javaTime()} ERROR 1 --- [${rng.pick(THREADS).padStart(15)}] ${rng.pick(JAVA_CLASSES).padEnd(40)} : request failed for user u-${rng.range(1, 99999)}`,
    rng.pick(JAVA_EXCEPTIONS),
  ];
  const frames = rng.range(5, 12);
  for (let i = 0; i < frames; i++) out.push(`\tat ${rng.pick(JAVA_FRAMES)}`);
  if (rng.chance(0.4)) {
    out.push(`Caused by: ${rng.pick(JAVA_EXCEPTIONS)}`);
    for (let i = rng.range(2, 4); i > 0; i--) out.push(`\tat ${rng.pick(JAVA_FRAMES)}`);
    out.push(`\t... ${rng.range(20, 60)} more`);
  }
  return out;
}

// --- writer -------------------------------------------------------------------------------------

const FLUSH_CHARS = 4 * 1024 * 1024;

/** Writes `lines` CRI lines to `path`; returns what it wrote. */
function writeCriFile(path: string, lines: number, seed: number): WorkloadMeta {
  const rng = new Rng(seed);
  const clock = new Clock();
  const meta: WorkloadMeta = {
    generatorVersion: GENERATOR_VERSION,
    seed,
    lines: 0,
    bytes: 0,
    records: 0,
    jsonRecords: 0,
    partialRecords: 0,
    partialLines: 0,
    traceLines: 0,
    textRecords: 0,
    stderrLines: 0,
  };
  const fd = openSync(path, 'w');
  let parts: string[] = [];
  let chars = 0;
  const flush = () => {
    const buf = Buffer.from(parts.join(''), 'utf8');
    writeSync(fd, buf);
    meta.bytes += buf.length;
    parts = [];
    chars = 0;
  };
  const line = (stream: 'stdout' | 'stderr', tag: 'P' | 'F', message: string) => {
    clock.advance(rng);
    const text = `${clock.rfc3339Nano()} ${stream} ${tag} ${message}\n`;
    parts.push(text);
    chars += text.length;
    meta.lines++;
    if (stream === 'stderr') meta.stderrLines++;
    if (tag === 'P') meta.partialLines++;
    else meta.records++;
    if (chars >= FLUSH_CHARS) flush();
  };

  try {
    while (meta.lines < lines) {
      const left = lines - meta.lines;
      const r = rng.next();
      if (r < 0.0045 && left >= 2) {
        const trace = stackTrace(rng, clock).slice(0, left);
        for (const l of trace) line('stderr', 'F', l);
        meta.traceLines += trace.length;
        meta.textRecords += trace.length;
        continue;
      }
      const isJson = r < 0.64;
      const { text, stderr } = isJson ? jsonMessage(rng, clock) : textMessage(rng, clock);
      if (isJson) meta.jsonRecords++;
      else meta.textRecords++;
      const stream = stderr ? 'stderr' : 'stdout';
      // Runtimes cut a record into P fragments at a byte count (16 KiB); here the record is cut at
      // random places to exercise the joiner at a realistic rate. Cuts fall between UTF-16 units
      // of non-surrogate text, so each fragment stays valid text.
      const pieces = rng.chance(0.02) ? Math.min(rng.range(2, 3), left) : 1;
      if (pieces > 1) {
        meta.partialRecords++;
        let at = 0;
        for (let p = 1; p < pieces; p++) {
          const cut = at + 1 + rng.int(Math.max(1, Math.floor((text.length - at) / (pieces - p + 1))));
          line(stream, 'P', text.slice(at, cut));
          at = cut;
        }
        line(stream, 'F', text.slice(at));
      } else {
        line(stream, 'F', text);
      }
    }
    flush();
  } finally {
    closeSync(fd);
  }
  return meta;
}

function readMeta(metaPath: string, dataPath: string): WorkloadMeta | undefined {
  try {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as WorkloadMeta;
    if (meta.generatorVersion !== GENERATOR_VERSION) return undefined;
    if (statSync(dataPath).size !== meta.bytes) return undefined;
    return meta;
  } catch {
    return undefined;
  }
}

/**
 * A CRI file of exactly `lines` lines under the cache directory, generated once per
 * (version, seed, lines) and reused afterwards. Generation writes to a temporary name and renames,
 * so an interrupted run never leaves a truncated file that looks cached.
 */
export function criFile(lines: number, seed = 1): CriFile {
  mkdirSync(CACHE_DIR, { recursive: true });
  const base = join(CACHE_DIR, `cri-v${GENERATOR_VERSION}-s${seed}-l${lines}`);
  const path = `${base}.log`;
  const metaPath = `${base}.json`;
  const cachedMeta = readMeta(metaPath, path);
  if (cachedMeta !== undefined) return { path, meta: cachedMeta, cached: true };
  const tmp = `${path}.${process.pid}.tmp`;
  const meta = writeCriFile(tmp, lines, seed);
  renameSync(tmp, path);
  renameSync(writeJson(`${metaPath}.${process.pid}.tmp`, meta), metaPath);
  return { path, meta, cached: false };
}

function writeJson(path: string, value: unknown): string {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
  } finally {
    closeSync(fd);
  }
  return path;
}

const CONTAINERS = ['app', 'app', 'app', 'sidecar', 'istio-proxy', 'worker'];

/**
 * A kubelet `/var/log/pods` tree: `<dir>/<ns>_<pod>_<uid>/<container>/0.log`, one container per pod,
 * `linesPerPod` lines each, every file from its own seed. Cached like `criFile`; the tree is
 * complete when its manifest exists.
 */
export async function criTree(pods: number, linesPerPod: number, seed = 1): Promise<CriTree> {
  const dir = join(CACHE_DIR, `tree-v${GENERATOR_VERSION}-s${seed}-p${pods}-l${linesPerPod}`);
  const manifest = join(dir, 'manifest.json');
  if (existsSync(manifest)) {
    try {
      const tree = JSON.parse(readFileSync(manifest, 'utf8')) as CriTree;
      return { ...tree, cached: true };
    } catch {
      // regenerate below
    }
  }
  await rm(dir, { recursive: true, force: true });
  const rng = new Rng(seed ^ 0x9e3779b9);
  const files: TreeFile[] = [];
  for (let i = 0; i < pods; i++) {
    const namespace = rng.pick(NAMESPACES);
    const service = rng.pick(SERVICES);
    const pod = rng.chance(0.3) ? `${service}-${i}` : `${service}-${rng.hex(9)}-${rng.hex(5)}`;
    const uid = `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-a${rng.hex(3)}-${rng.hex(12)}`;
    const container = rng.pick(CONTAINERS);
    const podDir = join(dir, `${namespace}_${pod}_${uid}`, container);
    mkdirSync(podDir, { recursive: true });
    const path = join(podDir, '0.log');
    const meta = writeCriFile(path, linesPerPod, (seed * 1_000_003 + i) >>> 0);
    files.push({ path, namespace, pod, uid, container, meta });
  }
  const sum = (k: 'lines' | 'records' | 'bytes') => files.reduce((s, f) => s + f.meta[k], 0);
  const tree: CriTree = {
    dir,
    files,
    lines: sum('lines'),
    records: sum('records'),
    bytes: sum('bytes'),
    cached: false,
  };
  await writeFile(manifest, `${JSON.stringify(tree, null, 2)}\n`);
  return tree;
}
