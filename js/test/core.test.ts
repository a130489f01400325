/**
 * The browser-side reader and derived views against files written by `pl.save` and the views that
 * `peeklens.views` derives from them (tests/labextension/make_fixtures.py writes both).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { strFromU8, strToU8, unzipSync, zipSync } from "fflate";
import { beforeAll, describe, expect, it } from "vitest";
import { displayName, GLOSSARY } from "../views/index";

import {
  BufferSource,
  type ByteSource,
  classHistograms,
  FileFormatError,
  HttpRangeSource,
  inputImages,
  latentImages,
  parseNpy,
  PeeklensView,
  Results,
  sha256Hex,
  spatialMaps,
  TraitSource,
  topInputs,
  utilisation,
  ZipIndex,
  ZipSource,
} from "../core/index";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
let dir = "";
let expected: any;

function python(): string {
  if (process.env.PEEKLENS_PYTHON) return process.env.PEEKLENS_PYTHON;
  const venv = path.join(repo, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

beforeAll(() => {
  dir = process.env.PEEKLENS_FIXTURES ?? "";
  if (!dir || !existsSync(path.join(dir, "expected.json"))) {
    dir = dir || mkdtempSync(path.join(tmpdir(), "peeklens-fixtures-"));
    execFileSync(python(), [path.join(repo, "tests", "labextension", "make_fixtures.py"), dir], { stdio: "inherit" });
  }
  expected = JSON.parse(readFileSync(path.join(dir, "expected.json"), "utf-8"));
}, 120_000);

function bytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(dir, name)));
}

async function openResults(src: ByteSource, name: string, useSubtle = true): Promise<Results> {
  return new Results(await ZipSource.open(src, name, { useSubtle }));
}

async function open(name: string): Promise<Results> {
  return openResults(new BufferSource(bytes(name)), name);
}

/** A file's payload as a widget syncs it: meta and each array's raw bytes. */
async function traits(name: string): Promise<{ meta: any; arrays: Record<string, Uint8Array> }> {
  const files = unzipSync(bytes(name));
  const meta = JSON.parse(strFromU8(files["meta.json"]));
  const arrays: Record<string, Uint8Array> = {};
  for (const key of Object.keys(meta.shapes)) {
    const npy = files[`${key}.npy`];
    const start =
      npy[6] === 1 ? 10 + (npy[8] | (npy[9] << 8)) : 12 + new DataView(npy.buffer, npy.byteOffset).getUint32(8, true);
    arrays[key] = npy.slice(start); // the raw little-endian data, as ipywidgets sends a bytes trait
  }
  return { meta, arrays };
}

function close(actual: ArrayLike<number>, want: number[], tol = 1e-5): void {
  expect(actual.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(actual[i] - want[i]));
  expect(worst).toBeLessThan(tol);
}

/** A fetch that serves a buffer and honours Range, counting bytes. */
function rangeServer(buf: Uint8Array, honourRange = true) {
  return async (_url: string, init?: RequestInit) => {
    const range = (init?.headers as Record<string, string>)?.Range;
    const m = range ? /bytes=(\d+)-(\d*)/.exec(range) : null;
    if (!honourRange || !m) return new Response(buf.slice(), { status: 200 });
    const start = Number(m[1]);
    const end = m[2] ? Math.min(Number(m[2]) + 1, buf.length) : buf.length;
    return new Response(buf.slice(start, end), {
      status: 206,
      headers: { "Content-Range": `bytes ${start}-${end - 1}/${buf.length}` },
    });
  };
}

describe("npy", () => {
  it("parses float32 C-order and Fortran-order arrays and refuses object arrays", () => {
    const enc = new TextEncoder();
    const make = (header: string, payload: Uint8Array) => {
      let h = header;
      while ((10 + h.length + 1) % 64) h += " ";
      h += "\n";
      const out = new Uint8Array(10 + h.length + payload.length);
      out.set([0x93, ...enc.encode("NUMPY"), 1, 0, h.length & 255, h.length >> 8]);
      out.set(enc.encode(h), 10);
      out.set(payload, 10 + h.length);
      return out;
    };
    const f = new Float32Array([1, 2, 3, 4, 5, 6]);
    const c = parseNpy(make("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", new Uint8Array(f.buffer)));
    expect(c.shape).toEqual([2, 3]);
    expect(Array.from(c.data)).toEqual([1, 2, 3, 4, 5, 6]);
    const fo = parseNpy(make("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", new Uint8Array(f.buffer)));
    expect(Array.from(fo.data)).toEqual([1, 3, 5, 2, 4, 6]);
    const i8 = parseNpy(
      make(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
        new Uint8Array(new BigInt64Array([7n, -2n]).buffer),
      ),
    );
    expect(Array.from(i8.data)).toEqual([7, -2]);
    expect(() =>
      parseNpy(make("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(16))),
    ).toThrow(/pickle/);
    expect(() =>
      parseNpy(make("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", new Uint8Array(f.buffer))),
    ).toThrow(/truncated/);
  });
});

describe("zip and metadata", () => {
  it("reads stored and deflated files written by pl.save", async () => {
    for (const name of ["sweep.peeklens", "sweep_deflate.peeklens"]) {
      const r = await open(name);
      expect(r.type).toBe("Sweep");
      expect(r.ranks).toEqual(expected.sweep.ranks);
      const F = await r.F(3);
      expect([F.rows, F.cols]).toEqual([60, 3]);
      expect(Array.from((await r.labels()) as Float64Array)).toEqual(expected.sweep.labels);
    }
  });

  it("reads only the entries a view needs through HTTP range requests", async () => {
    const buf = bytes("sweep.peeklens");
    const src = new HttpRangeSource("/files/sweep.peeklens", rangeServer(buf));
    const r = await openResults(src, "sweep.peeklens");
    const afterOpen = src.bytesFetched;
    expect(afterOpen).toBeLessThanOrEqual(16384 + 1);
    r.rankExplorerData(); // metadata only: no further requests
    expect(src.bytesFetched).toBe(afterOpen);
    await r.heatmapData(2);
    expect((r.source as ZipSource).loadedKeys.sort()).toEqual(["r2.W.1", "r2.W.2"]);
    // Only those two entries (plus a little header slack each) came over the wire.
    const sizes = ["r2.W.1.npy", "r2.W.2.npy"].map((k) => (r.source as ZipSource).zip.entries.get(k)!.compressedSize);
    expect(src.bytesFetched - afterOpen).toBeLessThanOrEqual(sizes[0] + sizes[1] + 2 * 400);
  });

  it("falls back to the whole body when the server ignores Range", async () => {
    const buf = bytes("sweep.peeklens");
    const src = new HttpRangeSource("/f", rangeServer(buf, false));
    const r = await openResults(src, "sweep.peeklens");
    await r.galleryData(4);
    expect(src.requests).toBe(1);
  });

  it("refuses truncated, tampered, foreign and future files with FileFormatError", async () => {
    const buf = bytes("sweep.peeklens");
    await expect(open("nope")).rejects.toThrow();
    await expect(openResults(new BufferSource(buf.slice(0, buf.length - 200)), "t")).rejects.toBeInstanceOf(
      FileFormatError,
    );
    await expect(
      openResults(new BufferSource(new TextEncoder().encode("hello world, not a zip file at all")), "x"),
    ).rejects.toThrow(/not a peeklens/);

    // Flip one byte inside an array: the SHA-256 check catches it.
    const zip = await ZipIndex.open(new BufferSource(buf));
    const e = zip.entries.get("r2.F.npy")!;
    const bad = buf.slice();
    bad[e.localOffset + 30 + e.name.length + 200] ^= 0xff;
    const r = await openResults(new BufferSource(bad), "bad");
    await expect(r.F(2)).rejects.toThrow(/checksum/);

    // A future format version, and a file that is a zip but not ours.
    const files = unzipSync(buf);
    const meta = JSON.parse(strFromU8(files["meta.json"]));
    expect((await ZipSource.open(new BufferSource(buf), "ok")).meta.format_version).toBe(meta.format_version);
    const future = zipSync(
      { ...files, "meta.json": strToU8(JSON.stringify({ ...meta, format_version: 99 })) },
      { level: 0 },
    );
    await expect(ZipSource.open(new BufferSource(future), "future")).rejects.toThrow(
      /format version 99.*Upgrade peeklens/,
    );
    // Edited metadata (a changed rmse) is refused, with and without WebCrypto.
    const edited = { ...meta, fits: { ...meta.fits, "2": { ...meta.fits["2"], rmse: 1e-9 } } };
    const tampered = zipSync({ ...files, "meta.json": strToU8(JSON.stringify(edited)) }, { level: 0 });
    for (const useSubtle of [true, false]) {
      await expect(ZipSource.open(new BufferSource(tampered), "edited", { useSubtle })).rejects.toThrow(
        /meta.json does not match its recorded checksum/,
      );
    }
    await expect(ZipSource.open(new BufferSource(tampered), "edited", { verify: false })).resolves.toBeTruthy();
    const { "meta.json.sha256": _digest, ...noDigest } = files;
    await expect(ZipSource.open(new BufferSource(zipSync(noDigest)), "nodigest")).rejects.toThrow(
      /meta.json.sha256 is missing/,
    );
    const foreign = zipSync({ "a.txt": strToU8("hi") });
    await expect(ZipSource.open(new BufferSource(foreign), "foreign")).rejects.toThrow(/no meta.json/);
  });
});

describe("sha256 without crypto.subtle", () => {
  it("@noble/hashes and WebCrypto agree", async () => {
    const data = bytes("sweep.peeklens");
    const js = await sha256Hex(data, { useSubtle: false });
    expect(js).toBe(await sha256Hex(data));
    expect(await sha256Hex(new Uint8Array(0), { useSubtle: false })).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    // a whole file checked on the JavaScript path
    const r = await openResults(new BufferSource(data), "sweep.peeklens", false);
    expect((await r.F(3)).rows).toBe(60);
  });
});

describe("version-1 files", () => {
  it("open without a metadata digest and show top inputs from the full inputs", async () => {
    const files = unzipSync(bytes("sweep.peeklens"));
    const meta = JSON.parse(strFromU8(files["meta.json"]));
    const { "meta.json.sha256": _d, ...rest } = files;
    const { display: _x, dtypes: _y, ...v1meta } = { ...meta, format_version: 1 };
    const v1 = zipSync({ ...rest, "meta.json": strToU8(JSON.stringify(v1meta)) }, { level: 0 });
    const r = await openResults(new BufferSource(v1), "v1.peeklens");
    const g = await r.galleryData(3);
    close(g!.topInputs!.data, expected.sweep.fits["3"].top8_thumbs.data);
  });
});

describe("derived views match peeklens.views", () => {
  it("thumbnails come from the display section, normalised by the full inputs range, in every source", async () => {
    const t = await traits("sweep_display.peeklens");
    const sources = [
      await open("sweep_display.peeklens"),
      await open("sweep.peeklens"),
      new Results(new TraitSource(t.meta, t.arrays)),
    ];
    for (const r of sources) {
      for (const rank of expected.sweep.ranks) {
        const want = expected.sweep.fits[String(rank)];
        const g = (await r.galleryData(rank))!;
        expect(g.topK).toBe(8);
        const [nf, k, hh, ww] = want.top8_thumbs.shape;
        expect([g.topInputs!.count, g.topInputs!.height, g.topInputs!.width]).toEqual([nf * k, hh, ww]);
        close(g.topInputs!.data, want.top8_thumbs.data);
        expect(Array.from(g.histograms!)).toEqual(want.hist50.flat());
        close(g.strength!, want.strength);
        close(g.latents.data, want.latent.data);
      }
    }
    await expect(sources[0].inputs()).resolves.toBeNull();
    expect(sources[0].classNames).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    // the widget source refuses arrays it was not sent, with a clear message
    const partial = new Results(new TraitSource(t.meta, {}));
    await expect(partial.F(2)).rejects.toThrow(/array "r2.F" was not sent to this view/);
  });

  it("latent images, top inputs, input images, histograms, utilisation and spatial maps", async () => {
    const r = await open("sweep.peeklens");
    for (const rank of expected.sweep.ranks) {
      const want = expected.sweep.fits[String(rank)];
      const F = await r.F(rank);
      const P = await r.loadings(rank, "input:0");
      const lat = latentImages([P], [8, 8]);
      expect([lat.count, lat.height, lat.width]).toEqual(want.latent.shape);
      close(lat.data, want.latent.data);
      expect(Array.from(topInputs(F, 8))).toEqual(want.top8.flat());
      const hist = classHistograms(F, (await r.labels())!, 50);
      expect(Array.from(hist.counts)).toEqual(want.hist50.flat());
      const inp = await r.inputs();
      const top3 = topInputs(F, 3);
      const imgs = inputImages(inp!.data, [8, 8], top3);
      close(imgs.data, want.top3_images.data);
      for (const b of r.layerBlocks) {
        const O = await r.loadings(rank, b.name);
        const u = utilisation(O, b.shape, 0.2);
        expect(u.unusedShare).toBeCloseTo(want.layers[b.name]["unused_share_0.2"], 6);
        if (b.shape.length === 3) expect(u.unusedChannels).toEqual(want.layers[b.name]["unused_channels_0.2"]);
        const sm = spatialMaps(O, b.shape, 1);
        expect(sm.shape).toEqual(want.layers[b.name].spatial1.shape);
        close(sm.data, want.layers[b.name].spatial1.data);
      }
      const g = await r.galleryData(rank);
      close(g!.strength!, want.strength);
    }
    const ex = r.rankExplorerData();
    close(
      ex.rmse,
      expected.sweep.ranks.map((k: number) => expected.sweep.fits[String(k)].rmse),
    );
    expect(ex.blockNames).toEqual(["input:0", "conv <b>1</b>", "fc"]);
  });

  it("RGB inputs fold into (rank, H, W, 3) latent images", async () => {
    const r = await open("rgb_fit.peeklens");
    expect(r.type).toBe("Factorization");
    const g = await r.galleryData(3);
    expect(g!.latents.channels).toBe(3);
    close(g!.latents.data, expected.rgb_fit.latent.data);
    expect(g!.histograms).toBeNull();
    close(g!.topInputs!.data.length === 0 ? [] : [g!.topK], [8]);
  });

  it("Activations and Spectrum files", async () => {
    const a = await open("acts.peeklens");
    expect(a.type).toBe("Activations");
    expect(a.blocks.map((b) => b.name)).toEqual(expected.acts.names);
    const s = await a.sampleImages(3);
    expect(s!.images.count).toBe(3);
    const sp = await open("spectrum.peeklens");
    const data = await sp.spectrumData("net");
    for (const series of data!.series) close(series.values, expected.spectrum[series.layer], 1e-4);
    // each layer's entropy effective rank travels with its series (the legend and marker show it)
    data!.series.forEach((series, i) => {
      expect(series.entropyRank).toBeCloseTo(Number(sp.meta.entropy_rank?.[i]), 6);
      expect(series.entropyRank!).toBeGreaterThanOrEqual(1);
    });
  });
});

describe("document view", () => {
  it("draws every section, shows names as text, and follows the rank and factor", async () => {
    const view = await PeeklensView.fromBytes(
      new BufferSource(bytes("sweep.peeklens")),
      "<img src=x onerror=alert(1)>.peeklens",
      {
        siblings: async () => [{ name: "rgb_fit.peeklens", open: () => open("rgb_fit.peeklens") }],
      },
    );
    document.body.appendChild(view.node);
    await view.drawn;
    const node = view.node;
    // Names from the file (a layer called "conv <b>1</b>", the file name) are text, never markup.
    expect(node.querySelector("b")).toBeNull();
    expect(node.querySelector("img")).toBeNull();
    expect(node.textContent).toContain("conv <b>1</b>");
    expect(node.querySelector(".pl-lab-title")!.textContent).toBe("<img src=x onerror=alert(1)>.peeklens");
    expect(node.dataset.drawnRank).toBe("2");
    expect(node.querySelectorAll(".pl-lab-gallery .pl-tile").length).toBe(2);

    // The rank slider of the explorer drives the gallery and the heatmaps.
    const slider = node.querySelector<HTMLInputElement>(".pl-rank-explorer input.pl-rank-slider")!;
    slider.value = "2";
    slider.dispatchEvent(new Event("input"));
    await view.drawn;
    expect(node.dataset.drawnRank).toBe("4");
    expect(node.querySelectorAll(".pl-lab-gallery .pl-tile").length).toBe(4);
    expect(node.querySelector(".pl-neuron-heatmaps h4")!.textContent).toContain("rank 4");

    node.querySelectorAll<HTMLElement>(".pl-lab-gallery .pl-tile")[3].click();
    expect(view.factor).toBe(3);

    // One set of "save" buttons per chart or view, from the views themselves: none on the
    // document's section heads, exactly one per chart figure, one per composite view.
    expect(node.querySelectorAll(".pl-lab-head .pl-export").length).toBe(0);
    const figures = node.querySelectorAll(".pl-lab-explorer .pl-figure");
    expect(figures.length).toBeGreaterThan(0);
    figures.forEach((f) => expect(f.querySelectorAll(".pl-export").length).toBe(1));
    expect(node.querySelectorAll(".pl-lab-gallery .pl-export").length).toBe(1);

    // Comparison with a sibling file.
    const out = document.createElement("div");
    await view.drawCompare(out, [{ name: "rgb_fit.peeklens", open: () => open("rgb_fit.peeklens") }]);
    const names = Array.from(out.querySelectorAll<HTMLElement>(".pl-compare-network")).map((e) => e.dataset.network);
    expect(names).toEqual(["<img src=x onerror=alert(1)>.peeklens", "rgb_fit.peeklens"]);
    // The comparison follows the document's rank slider, and the other way round.
    const cmp = out.querySelector<HTMLElement>(".pl-compare")!;
    expect(cmp.dataset.rank).toBe("4");
    slider.value = "0";
    slider.dispatchEvent(new Event("input"));
    await view.drawn;
    expect(node.dataset.drawnRank).toBe("2");
    expect(cmp.dataset.rank).toBe("2");
    const cmpSlider = cmp.querySelector<HTMLInputElement>("input.pl-rank-slider")!;
    cmpSlider.value = String(Number(cmpSlider.max));
    cmpSlider.dispatchEvent(new Event("input"));
    await view.drawn;
    expect(view.rank).toBe(Number(cmp.dataset.rank));
    view.dispose();
  });

  it("spectrum documents explain their columns and show each layer's entropy rank", async () => {
    const view = await PeeklensView.fromBytes(new BufferSource(bytes("spectrum.peeklens")), "spectrum.peeklens");
    document.body.appendChild(view.node);
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 50 && !view.node.querySelector(".pl-lab-table"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const ths = Array.from(view.node.querySelectorAll<HTMLElement>(".pl-lab-table th"));
    expect(ths.find((t) => t.textContent === "entropy effective rank")!.title).toBe(GLOSSARY.entropyRank);
    expect(ths.find((t) => t.textContent === "stable rank")!.title).toBe(GLOSSARY.stableRank);
    expect(view.node.textContent).toContain("entropy rank");
    // block names read as in the charts' titles (displayName), the saved name kept on hover
    const cells = Array.from(view.node.querySelectorAll<HTMLElement>(".pl-lab-table tr td:first-child"));
    expect(cells.map((c) => c.title)).toEqual(view.results.meta.names);
    expect(cells.map((c) => c.textContent)).toEqual((view.results.meta.names as string[]).map(displayName));
    view.dispose();
  });
});
