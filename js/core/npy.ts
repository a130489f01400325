/** `.npy` parsing (format versions 1-3) and raw little-endian buffers (widget traits) as arrays. */
import { FileFormatError, type NdArray, type NumArray } from "./schema";

const te = new TextDecoder("utf-8");
function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
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
        "peeklens never loads pickled data",
    );
  }
  const dims = shape[1]
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, "")));
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new FileFormatError(`${what}: bad array shape (${shape[1]})`);
  }
  return { descr: descr[1], fortran: fortran[1] === "True", shape: dims };
}

const KINDS: Record<string, [number, (buf: ArrayBuffer, off: number, n: number) => NumArray, string]> = {
  f4: [4, (b, o, n) => new Float32Array(b, o, n), "float32"],
  f8: [8, (b, o, n) => new Float64Array(b, o, n), "float64"],
  i4: [4, (b, o, n) => new Int32Array(b, o, n), "int32"],
  u4: [4, (b, o, n) => new Uint32Array(b, o, n), "uint32"],
  i2: [2, (b, o, n) => new Int16Array(b, o, n), "int16"],
  u2: [2, (b, o, n) => new Uint16Array(b, o, n), "uint16"],
  i1: [1, (b, o, n) => new Int8Array(b, o, n), "int8"],
  u1: [1, (b, o, n) => new Uint8Array(b, o, n), "uint8"],
  b1: [1, (b, o, n) => new Uint8Array(b, o, n), "bool"],
};

/**
 * Parse a `.npy` file (format versions 1-3). 64-bit integers become Float64Array (exact up to 2^53),
 * half floats become Float32Array; Fortran-ordered 2-D arrays are transposed to C order.
 */
export function parseNpy(bytes: Uint8Array, what = "array"): NdArray {
  if (bytes.length < 10 || bytes[0] !== 0x93 || te.decode(bytes.subarray(1, 6)) !== "NUMPY") {
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
  return decode(bytes, hstart + hlen, header.descr, header.shape, header.fortran, what);
}

/** The array of `shape` and NumPy `descr` whose data starts at `dataStart` in `bytes`. */
function decode(
  bytes: Uint8Array,
  dataStart: number,
  descr: string,
  shape: number[],
  fortran: boolean,
  what: string,
): NdArray {
  const header = { descr, shape, fortran };
  const count = header.shape.reduce((a, b) => a * b, 1);
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(header.descr);
  if (!m) {
    throw new FileFormatError(
      `${what} cannot be read without pickle (dtype ${header.descr}); peeklens never loads pickled data`,
    );
  }
  const [, order, kind, sizeStr] = m;
  const key = kind + sizeStr;
  const bigEndian = order === ">";
  const itemsize = Number(sizeStr);
  if (dataStart + count * itemsize > bytes.length) {
    throw new FileFormatError(`${what} is truncated (${bytes.length - dataStart} of ${count * itemsize} data bytes)`);
  }
  // Copy to an aligned buffer (zip entries start at arbitrary offsets).
  // A view where the data is aligned and little-endian (widget buffers, stored zip members usually are),
  // else an aligned copy (zip entries start at arbitrary offsets).
  const aligned = (bytes.byteOffset + dataStart) % Math.max(1, itemsize) === 0 && !bigEndian;
  const raw = aligned
    ? bytes.subarray(dataStart, dataStart + count * itemsize)
    : bytes.slice(dataStart, dataStart + count * itemsize);
  let data: NumArray;
  let dtype: string;
  if (key === "i8" || key === "u8") {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = Number(key === "i8" ? dv.getBigInt64(i * 8, !bigEndian) : dv.getBigUint64(i * 8, !bigEndian));
    }
    data = out;
    dtype = key === "i8" ? "int64" : "uint64";
  } else if (key === "f2") {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = halfToFloat(dv.getUint16(i * 2, !bigEndian));
    }
    data = out;
    dtype = "float16";
  } else if (KINDS[key]) {
    const [size, make, name] = KINDS[key];
    if (bigEndian && size > 1) {
      for (let i = 0; i < count; i++) {
        raw.subarray(i * size, (i + 1) * size).reverse();
      }
    }
    data = make(raw.buffer as ArrayBuffer, raw.byteOffset, count);
    dtype = name;
  } else {
    throw new FileFormatError(
      `${what} cannot be read without pickle (dtype ${header.descr}); peeklens never loads pickled data`,
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

/**
 * A raw little-endian buffer (a widget trait: DataView, ArrayBuffer or typed array) as an array of
 * NumPy `descr` (e.g. "<f4", "<i8") and `shape`. A view of the buffer unless its bytes are misaligned.
 */
export function fromRaw(v: unknown, descr: string, shape: number[], what = "array"): NdArray {
  let bytes: Uint8Array;
  if (v instanceof Uint8Array) {
    bytes = v;
  } else if (ArrayBuffer.isView(v)) {
    bytes = new Uint8Array(v.buffer as ArrayBuffer, v.byteOffset, v.byteLength);
  } else if (v instanceof ArrayBuffer) {
    bytes = new Uint8Array(v);
  } else {
    throw new FileFormatError(`${what} is not a binary buffer`);
  }
  return decode(bytes, 0, descr, shape, false, what);
}
