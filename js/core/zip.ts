/**
 * Browser-side reader of `.peeklens` files (a zip of `.npy` arrays plus `meta.json`).
 *
 * The zip is read lazily through a {@link ByteSource}: the central directory first, then only the
 * entries a view asks for (one ranged read each), so a large file costs what the current view needs.
 * Stored entries are sliced; deflated ones are inflated with fflate. `.npy` headers are parsed here;
 * object (pickled) arrays are refused, as in `peeklens.io.load(allow_pickle=False)`.
 */
import { inflateSync } from 'fflate';

export const FORMAT_NAME = 'peeklens';
export const FORMAT_VERSION = 1;

/** A problem with a results file: not a peeklens file, truncated, tampered or too new. */
export class FileFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileFormatError';
  }
}

/** Random access to the bytes of a file. */
export interface ByteSource {
  /** Total size in bytes. */
  size(): Promise<number>;
  /** Bytes [start, end) (end is clamped to the size). */
  read(start: number, end: number): Promise<Uint8Array>;
}

/** A file already in memory. */
export class BufferSource implements ByteSource {
  constructor(private readonly buf: Uint8Array) {}
  async size(): Promise<number> {
    return this.buf.length;
  }
  async read(start: number, end: number): Promise<Uint8Array> {
    return this.buf.subarray(start, Math.min(end, this.buf.length));
  }
}

export type Fetcher = (url: string, init?: RequestInit) => Promise<Response>;

/**
 * A file on an HTTP server that honours `Range` requests (Jupyter's `/files/` handler does).
 * If the server answers a ranged request with the whole body (status 200), the body is kept and
 * every later read is served from memory.
 */
export class HttpRangeSource implements ByteSource {
  private _size: number | null = null;
  private _whole: Uint8Array | null = null;
  /** Number of HTTP requests made (for tests and diagnostics). */
  requests = 0;
  /** Bytes received over HTTP. */
  bytesFetched = 0;

  constructor(
    private readonly url: string,
    private readonly fetcher: Fetcher = (u, i) => fetch(u, i)
  ) {}

  private async _get(start: number, end: number | null): Promise<Uint8Array> {
    const range = end === null ? `bytes=${start}-` : `bytes=${start}-${end - 1}`;
    this.requests++;
    const resp = await this.fetcher(this.url, { headers: { Range: range }, cache: 'no-store' });
    if (!resp.ok) {
      throw new FileFormatError(`cannot read ${this.url}: HTTP ${resp.status} ${resp.statusText}`);
    }
    const body = new Uint8Array(await resp.arrayBuffer());
    this.bytesFetched += body.length;
    if (resp.status === 200) {
      // No range support: we got the whole file.
      this._whole = body;
      this._size = body.length;
      return body.subarray(start, end === null ? body.length : Math.min(end, body.length));
    }
    const cr = resp.headers.get('Content-Range');
    const m = cr ? /\/(\d+)\s*$/.exec(cr) : null;
    if (m) {
      this._size = Number(m[1]);
    }
    return body;
  }

  async size(): Promise<number> {
    if (this._size === null) {
      // Probe with a one-byte request; Content-Range tells the size.
      await this._get(0, 1);
    }
    return this._size as number;
  }

  async read(start: number, end: number): Promise<Uint8Array> {
    if (this._whole) {
      return this._whole.subarray(start, Math.min(end, this._whole.length));
    }
    const size = await this.size();
    if (this._whole) {
      return (this._whole as Uint8Array).subarray(start, Math.min(end, size));
    }
    end = Math.min(end, size);
    if (end <= start) {
      return new Uint8Array(0);
    }
    return this._get(start, end);
  }
}

// ------------------------------------------------------------------------------------------- zip
interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localOffset: number;
}

const te = new TextDecoder('utf-8');

function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
}
function u64(b: Uint8Array, o: number): number {
  return u32(b, o) + u32(b, o + 4) * 0x100000000;
}

/** The entries of a zip archive, read from its central directory. */
export class ZipIndex {
  private constructor(
    readonly source: ByteSource,
    readonly entries: Map<string, ZipEntry>,
    private readonly tail: Uint8Array,
    private readonly tailStart: number
  ) {}

  /** Bytes [start, end), from the already-read tail of the file where possible. */
  private async _read(start: number, end: number): Promise<Uint8Array> {
    if (start >= this.tailStart) {
      return this.tail.subarray(start - this.tailStart, end - this.tailStart);
    }
    return this.source.read(start, end);
  }

  static async open(source: ByteSource, what = 'file'): Promise<ZipIndex> {
    const size = await source.size();
    if (size < 22) {
      throw new FileFormatError(`${what} is not a peeklens results file (too short: ${size} bytes)`);
    }
    // The end record is in the last 22 bytes unless the archive has a comment (<= 64 KiB):
    // read a small tail first (it usually holds the directory and meta.json too), then more if needed.
    let tailLen = Math.min(size, 16384);
    let tail = await source.read(size - tailLen, size);
    const findEocd = () => {
      for (let i = tail.length - 22; i >= 0; i--) {
        if (tail[i] === 0x50 && tail[i + 1] === 0x4b && tail[i + 2] === 5 && tail[i + 3] === 6) {
          return i;
        }
      }
      return -1;
    };
    let eocd = findEocd();
    if (eocd < 0 && tailLen < size) {
      tailLen = Math.min(size, 65557 + 20);
      tail = await source.read(size - tailLen, size);
      eocd = findEocd();
    }
    if (eocd < 0) {
      throw new FileFormatError(
        `${what} is not a peeklens results file or is truncated (no zip directory); save it again with pl.save`
      );
    }
    let count = u16(tail, eocd + 10);
    let cdSize = u32(tail, eocd + 12);
    let cdOffset = u32(tail, eocd + 16);
    // ZIP64 end-of-central-directory locator sits just before the EOCD record.
    const loc = eocd - 20;
    if (loc >= 0 && u32(tail, loc) === 0x07064b50) {
      const z64Off = u64(tail, loc + 8);
      const z64 = await source.read(z64Off, z64Off + 56);
      if (u32(z64, 0) !== 0x06064b50) {
        throw new FileFormatError(`${what}: corrupt zip64 directory`);
      }
      count = u64(z64, 32);
      cdSize = u64(z64, 40);
      cdOffset = u64(z64, 48);
    }
    if (cdOffset + cdSize > size) {
      throw new FileFormatError(`${what} is truncated (zip directory points past the end of the file)`);
    }
    const tailStart = size - tailLen;
    const cd =
      cdOffset >= tailStart
        ? tail.subarray(cdOffset - tailStart, cdOffset - tailStart + cdSize)
        : await source.read(cdOffset, cdOffset + cdSize);
    const entries = new Map<string, ZipEntry>();
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (p + 46 > cd.length || u32(cd, p) !== 0x02014b50) {
        throw new FileFormatError(`${what}: corrupt zip directory (entry ${n})`);
      }
      const method = u16(cd, p + 10);
      let compressedSize = u32(cd, p + 20);
      let uncompressedSize = u32(cd, p + 24);
      const nameLen = u16(cd, p + 28);
      const extraLen = u16(cd, p + 30);
      const commentLen = u16(cd, p + 32);
      let localOffset = u32(cd, p + 42);
      const name = te.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extended information (header id 1) replaces 0xffffffff fields, in order.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = u16(cd, e);
        const len = u16(cd, e + 2);
        if (id === 1) {
          let q = e + 4;
          if (uncompressedSize === 0xffffffff) {
            uncompressedSize = u64(cd, q);
            q += 8;
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = u64(cd, q);
            q += 8;
          }
          if (localOffset === 0xffffffff) {
            localOffset = u64(cd, q);
          }
        }
        e += 4 + len;
      }
      entries.set(name, { name, method, compressedSize, uncompressedSize, localOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return new ZipIndex(source, entries, tail, tailStart);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The uncompressed bytes of one entry. */
  async read(name: string, what = 'file'): Promise<Uint8Array> {
    const e = this.entries.get(name);
    if (!e) {
      throw new FileFormatError(`${what}: ${name} is missing (truncated or tampered file)`);
    }
    // Local header: 30 bytes + name + extra; read some slack so one request usually suffices.
    const slack = 30 + e.name.length * 4 + 256;
    let chunk = await this._read(e.localOffset, e.localOffset + slack + e.compressedSize);
    if (chunk.length < 30 || u32(chunk, 0) !== 0x04034b50) {
      throw new FileFormatError(`${what}: ${name} is corrupt or truncated (bad local header)`);
    }
    const start = 30 + u16(chunk, 26) + u16(chunk, 28);
    if (start + e.compressedSize > chunk.length) {
      chunk = await this._read(e.localOffset, e.localOffset + start + e.compressedSize);
      if (start + e.compressedSize > chunk.length) {
        throw new FileFormatError(`${what}: ${name} is truncated`);
      }
    }
    const raw = chunk.subarray(start, start + e.compressedSize);
    if (e.method === 0) {
      return raw;
    }
    if (e.method === 8) {
      try {
        return inflateSync(raw, { out: new Uint8Array(e.uncompressedSize) });
      } catch (err) {
        throw new FileFormatError(`${what}: ${name} cannot be decompressed (${err})`);
      }
    }
    throw new FileFormatError(`${what}: ${name} uses unsupported zip compression method ${e.method}`);
  }
}

// ------------------------------------------------------------------------------------------- npy
export type NumArray = Float32Array | Float64Array | Int32Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Uint32Array;

/** An n-dimensional array in C order. */
export interface NdArray {
  dtype: string;
  shape: number[];
  data: NumArray;
}

/** Parse the Python-literal header dict of a `.npy` file. */
function parseHeader(text: string, what: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) {
    // Structured or object dtypes have a list descr and are not peeklens arrays.
    throw new FileFormatError(
      `${what} cannot be read without pickle (unsupported array header ${text.trim().slice(0, 80)}); ` +
        'peeklens never loads pickled data'
    );
  }
  const dims = shape[1]
    .split(',')
    .map(s => s.trim())
    .filter(s => s.length > 0)
    .map(s => Number(s.replace(/L$/, '')));
  if (dims.some(d => !Number.isInteger(d) || d < 0)) {
    throw new FileFormatError(`${what}: bad array shape (${shape[1]})`);
  }
  return { descr: descr[1], fortran: fortran[1] === 'True', shape: dims };
}

const KINDS: Record<string, [number, (buf: ArrayBuffer, off: number, n: number) => NumArray, string]> = {
  f4: [4, (b, o, n) => new Float32Array(b, o, n), 'float32'],
  f8: [8, (b, o, n) => new Float64Array(b, o, n), 'float64'],
  i4: [4, (b, o, n) => new Int32Array(b, o, n), 'int32'],
  u4: [4, (b, o, n) => new Uint32Array(b, o, n), 'uint32'],
  i2: [2, (b, o, n) => new Int16Array(b, o, n), 'int16'],
  u2: [2, (b, o, n) => new Uint16Array(b, o, n), 'uint16'],
  i1: [1, (b, o, n) => new Int8Array(b, o, n), 'int8'],
  u1: [1, (b, o, n) => new Uint8Array(b, o, n), 'uint8'],
  b1: [1, (b, o, n) => new Uint8Array(b, o, n), 'bool']
};

/**
 * Parse a `.npy` file (format versions 1-3). 64-bit integers become Float64Array (exact up to 2^53),
 * half floats become Float32Array; Fortran-ordered 2-D arrays are transposed to C order.
 */
export function parseNpy(bytes: Uint8Array, what = 'array'): NdArray {
  if (
    bytes.length < 10 ||
    bytes[0] !== 0x93 ||
    te.decode(bytes.subarray(1, 6)) !== 'NUMPY'
  ) {
    throw new FileFormatError(`${what} is not a .npy array`);
  }
  const major = bytes[6];
  let hlen: number;
  let hstart: number;
  if (major === 1) {
    hlen = u16(bytes, 8);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    hlen = u32(bytes, 8);
    hstart = 12;
  } else {
    throw new FileFormatError(`${what}: unsupported .npy version ${major}`);
  }
  const header = parseHeader(te.decode(bytes.subarray(hstart, hstart + hlen)), what);
  const dataStart = hstart + hlen;
  const count = header.shape.reduce((a, b) => a * b, 1);
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(header.descr);
  if (!m) {
    throw new FileFormatError(
      `${what} cannot be read without pickle (dtype ${header.descr}); peeklens never loads pickled data`
    );
  }
  const [, order, kind, sizeStr] = m;
  const key = kind + sizeStr;
  const bigEndian = order === '>';
  const itemsize = Number(sizeStr);
  if (dataStart + count * itemsize > bytes.length) {
    throw new FileFormatError(`${what} is truncated (${bytes.length - dataStart} of ${count * itemsize} data bytes)`);
  }
  // Copy to an aligned buffer (zip entries start at arbitrary offsets).
  const raw = bytes.slice(dataStart, dataStart + count * itemsize);
  let data: NumArray;
  let dtype: string;
  if (key === 'i8' || key === 'u8') {
    const dv = new DataView(raw.buffer);
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = Number(key === 'i8' ? dv.getBigInt64(i * 8, !bigEndian) : dv.getBigUint64(i * 8, !bigEndian));
    }
    data = out;
    dtype = key === 'i8' ? 'int64' : 'uint64';
  } else if (key === 'f2') {
    const dv = new DataView(raw.buffer);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = halfToFloat(dv.getUint16(i * 2, !bigEndian));
    }
    data = out;
    dtype = 'float16';
  } else if (KINDS[key]) {
    const [size, make, name] = KINDS[key];
    if (bigEndian && size > 1) {
      for (let i = 0; i < count; i++) {
        raw.subarray(i * size, (i + 1) * size).reverse();
      }
    }
    data = make(raw.buffer, 0, count);
    dtype = name;
  } else {
    throw new FileFormatError(
      `${what} cannot be read without pickle (dtype ${header.descr}); peeklens never loads pickled data`
    );
  }
  if (header.fortran && header.shape.length > 1) {
    data = fortranToC(data, header.shape);
  }
  return { dtype, shape: header.shape, data };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) {
    return s * Math.pow(2, -14) * (f / 1024);
  }
  if (e === 31) {
    return f ? NaN : s * Infinity;
  }
  return s * Math.pow(2, e - 15) * (1 + f / 1024);
}

function fortranToC(data: NumArray, shape: number[]): NumArray {
  const out = new (data.constructor as any)(data.length) as NumArray;
  const nd = shape.length;
  const fStride = new Array(nd);
  fStride[0] = 1;
  for (let d = 1; d < nd; d++) {
    fStride[d] = fStride[d - 1] * shape[d - 1];
  }
  const idx = new Array(nd).fill(0);
  for (let i = 0; i < data.length; i++) {
    let off = 0;
    for (let d = 0; d < nd; d++) {
      off += idx[d] * fStride[d];
    }
    out[i] = data[off];
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) {
        break;
      }
      idx[d] = 0;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------- peeklens file
async function sha256Hex(bytes: Uint8Array): Promise<string | null> {
  const subtle = (globalThis as any).crypto?.subtle;
  if (!subtle) {
    return null;
  }
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, b => b.toString(16).padStart(2, '0')).join('');
}

/** The metadata of a results file: see `peeklens.io` for the fields. */
export type Meta = Record<string, any>;

/** A `.peeklens` file opened for lazy reading. */
export class PeeklensFile {
  private cache = new Map<string, Promise<NdArray>>();

  private constructor(
    readonly zip: ZipIndex,
    readonly meta: Meta,
    readonly name: string,
    readonly verify: boolean
  ) {}

  /** Open a file: read the zip directory and `meta.json`, check format and version. */
  static async open(source: ByteSource, name = 'file', options: { verify?: boolean } = {}): Promise<PeeklensFile> {
    const zip = await ZipIndex.open(source, name);
    if (!zip.has('meta.json')) {
      throw new FileFormatError(`${name} has no meta.json: it was not written by peeklens.save`);
    }
    let meta: Meta;
    try {
      meta = JSON.parse(te.decode(await zip.read('meta.json', name)));
    } catch (e) {
      if (e instanceof FileFormatError) {
        throw e;
      }
      throw new FileFormatError(`${name}: metadata is corrupt or truncated (${e})`);
    }
    if (!meta || typeof meta !== 'object' || meta.format !== FORMAT_NAME) {
      throw new FileFormatError(`${name} is not a peeklens results file (format ${JSON.stringify(meta?.format)})`);
    }
    const version = meta.format_version;
    if (!Number.isInteger(version)) {
      throw new FileFormatError(`${name}: format_version is missing or not an integer`);
    }
    if (version > FORMAT_VERSION) {
      throw new FileFormatError(
        `${name} uses format version ${version}, written by peeklens ${meta.peeklens}; this viewer reads ` +
          `format ${FORMAT_VERSION}. Upgrade peeklens to read it`
      );
    }
    return new PeeklensFile(zip, meta, name, options.verify ?? true);
  }

  /** The object type: "Sweep", "Factorization", "Activations" or "Spectrum". */
  get type(): string {
    return String(this.meta.type);
  }

  /** Read one array by its key in the metadata (cached; verified against the recorded SHA-256). */
  array(key: string): Promise<NdArray> {
    if (typeof key !== 'string') {
      return Promise.reject(new FileFormatError(`${this.name}: bad array reference ${JSON.stringify(key)} in metadata`));
    }
    let p = this.cache.get(key);
    if (!p) {
      p = this._load(key);
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  private async _load(key: string): Promise<NdArray> {
    const raw = await this.zip.read(key + '.npy', this.name);
    if (this.verify) {
      const want = (this.meta.sha256 || {})[key];
      const got = await sha256Hex(raw);
      if (got !== null && (want === undefined || got !== want)) {
        throw new FileFormatError(
          `${this.name}: array ${JSON.stringify(key)} does not match its recorded checksum: ` +
            'the file was modified after saving or is damaged'
        );
      }
    }
    const arr = parseNpy(raw, `${this.name}: array ${JSON.stringify(key)}`);
    const shape = (this.meta.shapes || {})[key];
    if (shape && JSON.stringify(shape) !== JSON.stringify(arr.shape)) {
      throw new FileFormatError(
        `${this.name}: array ${JSON.stringify(key)} has shape (${arr.shape}), metadata says (${shape})`
      );
    }
    return arr;
  }

  /** Number of array entries read so far. */
  get loadedKeys(): string[] {
    return Array.from(this.cache.keys());
  }
}
