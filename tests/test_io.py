import json
import zipfile

import numpy as np
import pytest

import peeklens as pl
from peeklens import io as pio
from peeklens import schema, views
from peeklens.errors import FileFormatError


@pytest.fixture
def acts():
    rng = np.random.default_rng(0)
    return pl.Activations.from_arrays(
        {"input:0": rng.random((16, 25)), "<b>relu</b>": rng.random((6, 25))},
        shapes={"input:0": (4, 4), "<b>relu</b>": (6,)},
        labels=np.arange(25) % 3,
    )


def test_activations_round_trip(acts, tmp_path):
    back = pl.load(pl.save(acts, tmp_path / "a.peeklens"))
    assert isinstance(back, pl.Activations) and back.names == acts.names
    for n in acts.names:
        np.testing.assert_array_equal(back[n].data, acts[n].data)
        assert back[n].shape == acts[n].shape and back[n].kind == acts[n].kind
    np.testing.assert_array_equal(back.labels, acts.labels)


def test_factorization_round_trip(acts, tmp_path):
    fit = pl.factorize(acts, 3, max_iter=20)
    back = pl.load(pl.save(fit, tmp_path / "f.peeklens"))
    assert isinstance(back, pl.Factorization)
    np.testing.assert_array_equal(back.F, fit.F)
    for n in fit.loadings:
        np.testing.assert_array_equal(back.loadings[n], fit.loadings[n])
    assert back.errors == fit.errors and back.rmse == fit.rmse and back.settings == fit.settings
    np.testing.assert_array_equal(back.objective, fit.objective)
    np.testing.assert_array_equal(back.inputs["input:0"], acts["input:0"].data)
    np.testing.assert_array_equal(back.labels, acts.labels)
    assert back.blocks == fit.blocks and (back.n_iter, back.converged) == (fit.n_iter, fit.converged)


def test_sweep_round_trip_and_spectrum(acts, tmp_path):
    s = pl.sweep(acts, [1, 3], max_iter=10, progress=False)
    back = pl.load(pl.save(s, tmp_path / "s.peeklens"))
    assert isinstance(back, pl.Sweep) and back.ranks == [1, 3]
    np.testing.assert_array_equal(back.rmse, s.rmse)
    np.testing.assert_array_equal(back[3].loadings["<b>relu</b>"], s[3].loadings["<b>relu</b>"])
    assert back[1].inputs is back[3].inputs  # stored once, shared
    sv = pl.spectrum(acts, k=4)
    sb = pl.load(pl.save(sv, tmp_path / "v.peeklens"))
    np.testing.assert_array_equal(sb.values["input:0"], sv.values["input:0"])
    assert sb.entropy_rank == sv.entropy_rank


def test_file_is_a_plain_zip_with_json_metadata_and_versions(acts, tmp_path):
    fit = pl.factorize(acts, 2, max_iter=5, seed=42)
    p = pl.save(fit, tmp_path / "f.peeklens")
    with zipfile.ZipFile(p) as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("meta.json"))
    assert all(n in ("meta.json", pio.META_DIGEST) or n.endswith(".npy") for n in names)
    assert not any("<" in n for n in names)  # block names never become file names
    assert meta["format_version"] == pio.FORMAT_VERSION and meta["type"] == "Factorization"
    assert meta["fit"]["settings"]["seed"] == 42 and meta["torch"] and meta["peeklens"] == pl.__version__
    with np.load(p, allow_pickle=False) as z:  # numpy reads it as an .npz too
        np.testing.assert_array_equal(z["F"], fit.F)


def _rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            data = edit(item, data)
            if data is not None:
                zout.writestr(item, data)


def test_truncated_file_is_refused(acts, tmp_path):
    p = pl.save(acts, tmp_path / "a.peeklens")
    raw = p.read_bytes()
    (tmp_path / "t.peeklens").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileFormatError, match="truncated"):
        pl.load(tmp_path / "t.peeklens")


def test_tampered_array_is_refused(acts, tmp_path):
    p = pl.save(acts, tmp_path / "a.peeklens")

    def flip(name, data):
        if name == "block.1.npy":
            data = bytearray(data)
            data[-1] ^= 0xFF
            return bytes(data)
        return data

    _rewrite(p, tmp_path / "x.peeklens", flip)
    with pytest.raises(FileFormatError, match="checksum"):
        pl.load(tmp_path / "x.peeklens")


def test_future_version_is_refused(acts, tmp_path):
    p = pl.save(acts, tmp_path / "a.peeklens")

    def bump(name, data):
        if name == "meta.json":
            meta = json.loads(data)
            meta["format_version"] = pio.FORMAT_VERSION + 1
            return json.dumps(meta)
        return data

    _rewrite(p, tmp_path / "f.peeklens", bump)
    with pytest.raises(FileFormatError, match="Upgrade peeklens"):
        pl.load(tmp_path / "f.peeklens")


class Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickled_array_is_never_loaded(acts, tmp_path, monkeypatch):
    import io as _io

    monkeypatch.chdir(tmp_path)
    p = pl.save(acts, tmp_path / "a.peeklens")
    buf = _io.BytesIO()
    np.lib.format.write_array(buf, np.array([Evil()], dtype=object), allow_pickle=True)

    def smuggle(name, data):
        return buf.getvalue() if name == "block.0.npy" else data

    _rewrite(p, tmp_path / "e.peeklens", smuggle)
    for verify in (True, False):
        with pytest.raises(FileFormatError):
            pl.load(tmp_path / "e.peeklens", verify=verify)
    assert not (tmp_path / "PWNED").exists()


def test_not_a_peeklens_file(tmp_path):
    (tmp_path / "x.peeklens").write_text("hello")
    with pytest.raises(FileFormatError, match="not a peeklens results file"):
        pl.load(tmp_path / "x.peeklens")
    with pytest.raises(FileNotFoundError):
        pl.load(tmp_path / "missing.peeklens")
    with pytest.raises(pl.InputError, match="save\\(\\) takes"):
        pl.save({"a": 1}, tmp_path / "y.peeklens")


def _edit_meta(src, dst, edit):
    def f(name, data):
        if name == "meta.json":
            meta = json.loads(data)
            edit(meta)
            return json.dumps(meta, indent=1)
        return data

    _rewrite(src, dst, f)
    return dst


def test_edited_metadata_is_refused(acts, tmp_path):
    fit = pl.factorize(acts, 2, max_iter=5)
    p = pl.save(fit, tmp_path / "f.peeklens")
    x = _edit_meta(p, tmp_path / "x.peeklens", lambda m: m["fit"].__setitem__("rmse", 0.0001))
    with pytest.raises(FileFormatError, match="meta.json does not match its recorded checksum"):
        pl.load(x)
    assert pl.load(x, verify=False).rmse == 0.0001  # the user can still read it, knowingly
    # a file whose metadata digest member was dropped is refused too
    _rewrite(p, tmp_path / "y.peeklens", lambda name, data: None if name == pio.META_DIGEST else data)
    with pytest.raises(FileFormatError, match="meta.json.sha256 is missing"):
        pl.load(tmp_path / "y.peeklens")


def test_format_1_files_load_with_a_warning(acts, tmp_path):
    s = pl.sweep(acts, [1, 2], max_iter=5, progress=False)
    p = pl.save(s, tmp_path / "s.peeklens")

    def downgrade(name, data):
        if name == pio.META_DIGEST or name.startswith("display."):
            return None
        if name == "meta.json":
            meta = json.loads(data)
            meta["format_version"] = 1
            for k in ("display", "dtypes"):
                meta.pop(k, None)
            return json.dumps(meta)
        return data

    _rewrite(p, tmp_path / "v1.peeklens", downgrade)
    with pytest.warns(UserWarning, match="format-1 file: its metadata is not covered"):
        back = pl.load(tmp_path / "v1.peeklens")
    np.testing.assert_array_equal(back[2].F, s[2].F)


def test_display_section_holds_the_images_the_views_show(acts, tmp_path):
    s = pl.sweep(acts, [2, 3], max_iter=10, progress=False)
    meta, arrays = schema.to_payload(s, include_inputs=False, top_k=4, class_names=["a", "b", "c"])
    assert meta["inputs"] is None and "input.0" not in arrays  # the full inputs stay out
    d = meta["display"]
    want = np.unique(np.concatenate([views.top_inputs(s[r], 4).ravel() for r in s.ranks]))
    np.testing.assert_array_equal(arrays[d["samples"]], want)
    np.testing.assert_array_equal(arrays[d["images"][0]], acts["input:0"].data[:, want].astype(np.float32))
    x = acts["input:0"].data
    assert d["value_range"] == [float(x.min()), float(x.max())] and d["class_names"] == ["a", "b", "c"]
    assert d["top_k"] == 4 and set(meta["dtypes"]) == set(arrays) == set(meta["shapes"])
    with pytest.raises(pl.InputError, match="class_names has 2 names but the labels go up to 2"):
        schema.to_payload(s, class_names=["a", "b"])
    back = schema.from_payload(meta, arrays.__getitem__)
    np.testing.assert_array_equal(back[3].F, s[3].F)
    assert back[3].inputs is None


def test_to_bytes_is_a_loadable_file(acts, tmp_path):
    s = pl.sweep(acts, [2], max_iter=5, progress=False)
    raw = pio.to_bytes(s)
    (tmp_path / "b.peeklens").write_bytes(raw)
    back = pl.load(tmp_path / "b.peeklens")
    np.testing.assert_array_equal(back[2].F, s[2].F)
    assert back[2].inputs is None and pio.read_meta(tmp_path / "b.peeklens")["display"]["top_k"] == 8


def test_tensor_factorization_keeps_its_spatial_factors(tmp_path):
    from peeklens.nmf.tensor import factorize_tensor

    rng = np.random.default_rng(2)
    acts = pl.Activations.from_arrays({"input:0": rng.random((9, 20)), "conv": rng.random((2 * 3 * 3, 20))},
                                      shapes={"input:0": (3, 3), "conv": (2, 3, 3)})
    fit = factorize_tensor(acts, 2, max_iter=5)
    assert fit.spatial
    back = pl.load(pl.save(fit, tmp_path / "t.peeklens"))
    assert set(back.spatial) == set(fit.spatial)
    for n, S in fit.spatial.items():
        np.testing.assert_array_equal(back.spatial[n], S)
    plain = pl.load(pl.save(pl.factorize(acts, 2, max_iter=5), tmp_path / "m.peeklens"))
    assert plain.spatial is None


def test_signed_blocks_and_token_sample_info_round_trip(tmp_path):
    """A semi-NMF (signed) block stays signed and token samples keep where they came from."""
    rng = np.random.default_rng(0)
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((4, 6)), "mlp": rng.standard_normal((3, 6))},
        signed=["mlp"],
        sample_info={"sample": np.repeat(np.arange(3), 2), "position": np.tile(np.arange(2), 3)},
    )
    back = pl.load(pl.save(acts, tmp_path / "a.peeklens"))
    assert back["mlp"].signed and not back["input:0"].signed
    np.testing.assert_array_equal(back["mlp"].data, acts["mlp"].data)
    assert sorted(back.sample_info) == ["position", "sample"]
    np.testing.assert_array_equal(back.sample_info["sample"], [0, 0, 1, 1, 2, 2])
