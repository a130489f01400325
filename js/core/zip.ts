/**
 * Lazy reading of a zip archive through a {@link ByteSource}: the central directory first, then
 * only the members asked for (one ranged read each), so a large `.peeklens` file costs what the
 * current view needs. Stored members are sliced; deflated ones are inflated with fflate.
 *
 * Why not zip.js's HttpRangeReader: it would replace the ~120 lines of directory parsing below but
 * brings its own fetch (Jupyter's authenticated `ServerConnection.makeRequest` would need a custom
 * reader anyway), workers/streams plumbing and ~50 KB to every bundle (widgets included); fflate
 * (8 KB) does the part that is hard to get right (inflate), and the directory parser is tested
 * against files written by Python's zipfile (zip64 included) in js/test/core.test.ts.
 */
import { inflateSync } from "fflate";
import { FileFormatError } from "./schema";

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
    private readonly fetcher: Fetcher = (u, i) => fetch(u, i),
  ) {}

  private async _get(start: number, end: number | null): Promise<Uint8Array> {
    const range = end === null ? `bytes=${start}-` : `bytes=${start}-${end - 1}`;
    this.requests++;
    const resp = await this.fetcher(this.url, { headers: { Range: range }, cache: "no-store" });
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
    const cr = resp.headers.get("Content-Range");
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

const te = new TextDecoder("utf-8");

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
    private readonly tailStart: number,
  ) {}

  /** Bytes [start, end), from the already-read tail of the file where possible. */
  private async _read(start: number, end: number): Promise<Uint8Array> {
    if (start >= this.tailStart) {
      return this.tail.subarray(start - this.tailStart, end - this.tailStart);
    }
    return this.source.read(start, end);
  }

  static async open(source: ByteSource, what = "file"): Promise<ZipIndex> {
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
        `${what} is not a peeklens results file or is truncated (no zip directory); save it again with pl.save`,
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
  async read(name: string, what = "file"): Promise<Uint8Array> {
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
