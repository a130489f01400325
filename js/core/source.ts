/**
 * The {@link Source}s of a results payload: a `.peeklens` zip read lazily (lab document, offline
 * report) and the synced traits of a widget.
 */
import { fromRaw, parseNpy } from "./npy";
import { checkHeader, FileFormatError, META_DIGEST, type Meta, type NdArray, type Source } from "./schema";
import { sha256Hex } from "./sha256";
import { type ByteSource, ZipIndex } from "./zip";

const te = new TextDecoder("utf-8");

export interface ZipSourceOptions {
  /** Check meta.json and every array against their SHA-256 digests (default true). */
  verify?: boolean;
  /** Use WebCrypto when present (default true); false forces @noble/hashes (tests). */
  useSubtle?: boolean;
}

/** A `.peeklens` file opened for lazy reading: the metadata now, each array when asked for. */
export class ZipSource implements Source {
  private cache = new Map<string, Promise<NdArray>>();

  private constructor(
    readonly zip: ZipIndex,
    readonly meta: Meta,
    readonly name: string,
    readonly version: number,
    private readonly options: ZipSourceOptions,
  ) {}

  /** Open a file: read the zip directory and `meta.json`; check format, version and the metadata digest. */
  static async open(source: ByteSource, name = "file", options: ZipSourceOptions = {}): Promise<ZipSource> {
    const zip = await ZipIndex.open(source, name);
    if (!zip.has("meta.json")) {
      throw new FileFormatError(`${name} has no meta.json: it was not written by peeklens.save`);
    }
    const raw = await zip.read("meta.json", name);
    let meta: Meta;
    try {
      meta = JSON.parse(te.decode(raw));
    } catch (e) {
      throw new FileFormatError(`${name}: metadata is corrupt or truncated (${e})`);
    }
    const version = checkHeader(meta, name);
    const verify = options.verify ?? true;
    if (verify && version >= 2) {
      if (!zip.has(META_DIGEST)) {
        throw new FileFormatError(
          `${name}: ${META_DIGEST} is missing, so the metadata cannot be checked (truncated or tampered file)`,
        );
      }
      const want = te.decode(await zip.read(META_DIGEST, name)).trim();
      const got = await sha256Hex(raw, { useSubtle: options.useSubtle });
      if (got !== want) {
        throw new FileFormatError(
          `${name}: meta.json does not match its recorded checksum: the metadata was edited after saving ` +
            "or is damaged",
        );
      }
    }
    return new ZipSource(zip, meta, name, version, options);
  }

  /** Read one array by its key (cached; verified against the recorded SHA-256). */
  getArray(key: string): Promise<NdArray> {
    if (typeof key !== "string") {
      return Promise.reject(
        new FileFormatError(`${this.name}: bad array reference ${JSON.stringify(key)} in metadata`),
      );
    }
    let p = this.cache.get(key);
    if (!p) {
      p = this.load(key);
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  private async load(key: string): Promise<NdArray> {
    const raw = await this.zip.read(`${key}.npy`, this.name);
    if (this.options.verify ?? true) {
      const want = this.meta.sha256?.[key];
      const got = await sha256Hex(raw, { useSubtle: this.options.useSubtle });
      if (want === undefined || got !== want) {
        throw new FileFormatError(
          `${this.name}: array ${JSON.stringify(key)} does not match its recorded checksum: ` +
            "the file was modified after saving or is damaged",
        );
      }
    }
    const arr = parseNpy(raw, `${this.name}: array ${JSON.stringify(key)}`);
    checkShape(this.meta, key, arr, this.name);
    return arr;
  }

  /** Keys of the arrays read so far. */
  get loadedKeys(): string[] {
    return Array.from(this.cache.keys());
  }
}

function checkShape(meta: Meta, key: string, arr: NdArray, name: string): void {
  const shape = meta.shapes?.[key];
  if (shape && JSON.stringify(shape) !== JSON.stringify(arr.shape)) {
    throw new FileFormatError(
      `${name}: array ${JSON.stringify(key)} has shape (${arr.shape}), metadata says (${shape})`,
    );
  }
}

/**
 * A payload synced to a widget: `meta` (JSON) and `arrays` (key -> little-endian buffer, the
 * dtypes and shapes from `meta`). Arrays are decoded once, on first use.
 */
export class TraitSource implements Source {
  private cache = new Map<string, NdArray>();

  constructor(
    readonly meta: Meta,
    private readonly arrays: Record<string, unknown>,
    readonly name = "widget",
  ) {
    checkHeader(meta, name);
  }

  getArray(key: string): Promise<NdArray> {
    try {
      return Promise.resolve(this.getArraySync(key));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The same, synchronously (traits are in memory). */
  getArraySync(key: string): NdArray {
    let a = this.cache.get(key);
    if (a) return a;
    const buf = this.arrays?.[key];
    const descr = this.meta.dtypes?.[key];
    const shape = this.meta.shapes?.[key];
    if (buf == null || !descr || !shape) {
      throw new FileFormatError(`${this.name}: array ${JSON.stringify(key)} was not sent to this view`);
    }
    a = fromRaw(buf, descr, shape, `${this.name}: array ${JSON.stringify(key)}`);
    this.cache.set(key, a);
    return a;
  }
}
