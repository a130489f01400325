/**
 * SHA-256 (hex) of some bytes: WebCrypto where the page has it, else @noble/hashes (audited, small).
 * Plain-HTTP JupyterLab servers (not localhost) and some embedded browsers have no `crypto.subtle`;
 * the digests are checked there too.
 */
import { sha256 } from "@noble/hashes/sha2.js";

function hex(d: Uint8Array): string {
  let s = "";
  for (let i = 0; i < d.length; i++) s += d[i].toString(16).padStart(2, "0");
  return s;
}

/** The SHA-256 digest of `bytes` as lowercase hex; `useSubtle: false` forces the JavaScript path. */
export async function sha256Hex(bytes: Uint8Array, options: { useSubtle?: boolean } = {}): Promise<string> {
  const subtle = options.useSubtle === false ? undefined : (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (subtle) {
    try {
      return hex(new Uint8Array(await subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)));
    } catch {
      // fall through: some contexts expose subtle but refuse to use it
    }
  }
  return hex(sha256(bytes));
}
