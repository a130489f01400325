"""Untrusted results files: truncated, tampered, future, pickle-smuggling, oversized; interrupted saves."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import peeklens as pl
from peeklens.errors import FileFormatError
from peeklens.io import META_DIGEST


def small_acts() -> pl.Activations:
    rng = np.random.default_rng(0)
    return pl.Activations.from_arrays({"input:0": rng.random((9, 12)), "relu": rng.random((4, 12))},
                                      shapes={"input:0": (3, 3)}, labels=np.arange(12) % 3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("io")
    sw = pl.sweep(small_acts(), ranks=[1, 2], max_iter=5, progress=False, solver="mu")
    return pl.save(sw, d / "s.peeklens")


class Payload:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def rewrite(src: Path, dst: Path, *, meta_edit=None, members: dict | None = None, drop=()) -> Path:
    """Copy a results file, editing meta.json and replacing or adding members (every digest recomputed,
    the metadata's too, as a careful attacker would)."""
    with zipfile.ZipFile(src) as zin:
        names = zin.namelist()
        content = {n: zin.read(n) for n in names if n not in drop}
    meta = json.loads(content.pop("meta.json"))
    for name, raw in (members or {}).items():
        content[name] = raw
        if name.endswith(".npy"):
            meta["sha256"][name[:-4]] = hashlib.sha256(raw).hexdigest()  # a careful attacker fixes digests
    if meta_edit:
        meta_edit(meta)
    text = json.dumps(meta).encode()
    content.pop(META_DIGEST, None)
    with zipfile.ZipFile(dst, "w") as zout:
        for n, raw in content.items():
            zout.writestr(n, raw)
        zout.writestr("meta.json", text)
        if META_DIGEST not in drop:
            zout.writestr(META_DIGEST, hashlib.sha256(text).hexdigest())  # ... and the metadata digest
    return dst


def npy_bytes(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


@pytest.mark.parametrize("verify", [True, False])
def test_smuggled_pickle_in_an_array_never_runs(saved, tmp_path, verify):
    marker = tmp_path / "pwned"
    evil = np.array([Payload(marker)], dtype=object)
    p = rewrite(saved, tmp_path / "evil.peeklens", members={"F.npy": npy_bytes(evil, allow_pickle=True)},
                meta_edit=lambda m: (m["fits"]["1"].__setitem__("F", "F"), m["shapes"].__setitem__("F", [1])))
    with pytest.raises(FileFormatError, match=r"array 'F' has dtype object, which would need pickle"):
        pl.load(p, verify=verify)
    assert not marker.exists()


def test_smuggled_pickle_member_and_whole_file_pickle_never_run(saved, tmp_path):
    marker = tmp_path / "pwned"
    raw = pickle.dumps(Payload(marker))
    # a .pkl member referenced from the metadata: read as .npy, which it is not
    p = rewrite(saved, tmp_path / "m.peeklens", members={"evil.pkl": raw, "evil.npy": raw},
                meta_edit=lambda m: m["fits"]["1"].__setitem__("F", "evil"))
    with pytest.raises(FileFormatError, match=r"'evil' is not a valid \.npy"):
        pl.load(p)
    # a pickle saved under the results-file name
    (tmp_path / "whole.peeklens").write_bytes(raw)
    with pytest.raises(FileFormatError, match="not a peeklens results file"):
        pl.load(tmp_path / "whole.peeklens")
    assert not marker.exists()


def test_path_traversal_in_array_reference_is_refused(saved, tmp_path):
    p = rewrite(saved, tmp_path / "t.peeklens", meta_edit=lambda m: m["fits"]["1"].__setitem__("F", "../../etc/x"))
    with pytest.raises(FileFormatError, match=r"array '../../etc/x' is missing"):
        pl.load(p)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frac=st.floats(0.0, 0.999))
def test_truncated_anywhere_is_a_file_format_error(saved, tmp_path, frac):
    raw = saved.read_bytes()
    p = tmp_path / "cut.peeklens"
    p.write_bytes(raw[: int(len(raw) * frac)])
    with pytest.raises(FileFormatError):
        pl.load(p)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 10_000), delta=st.integers(1, 255))
def test_any_flipped_byte_is_caught_or_harmless(saved, tmp_path, pos, delta):
    """A byte changed anywhere: a FileFormatError, or (in zip padding/timestamps) identical data.

    Found by this test: a flipped flag bit made zipfile claim encryption (RuntimeError) or an
    unknown compression method (NotImplementedError); both are now FileFormatErrors.
    """
    raw = bytearray(saved.read_bytes())
    pos %= len(raw)
    raw[pos] = (raw[pos] + delta) % 256
    p = tmp_path / "flip.peeklens"
    p.write_bytes(bytes(raw))
    try:
        back = pl.load(p)
    except FileFormatError:
        return
    ref = pl.load(saved)
    assert back.ranks == ref.ranks
    for r in ref.ranks:
        np.testing.assert_array_equal(back[r].F, ref[r].F)
        for n in ref[r].loadings:
            np.testing.assert_array_equal(back[r].loadings[n], ref[r].loadings[n])


def test_tampered_array_with_stale_digest(saved, tmp_path):
    with zipfile.ZipFile(saved) as z:
        F = np.lib.format.read_array(io.BytesIO(z.read("r1.F.npy")))
    content = npy_bytes(F * 2)
    p = tmp_path / "t.peeklens"
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(p, "w") as zout:
        for n in zin.namelist():
            zout.writestr(n, content if n == "r1.F.npy" else zin.read(n))
    with pytest.raises(FileFormatError, match=r"array 'r1.F' does not match its recorded checksum"):
        pl.load(p)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.__setitem__("format_version", 99), r"format version 99.*Upgrade peeklens"),
    (lambda m: m.__setitem__("format_version", "1"), "format_version is missing or not an integer"),
    (lambda m: m.__setitem__("format", "other"), "not a peeklens results file"),
    (lambda m: m.__setitem__("type", "Pickle"), "unknown object type 'Pickle'"),
    (lambda m: m["fits"]["1"].pop("names"), "metadata is inconsistent"),
    (lambda m: m["shapes"].__setitem__("r1.F", [5, 5]), r"array 'r1.F' has shape \(12, 1\), metadata says \[5, 5\]"),
    (lambda m: m["fits"].__setitem__("x", m["fits"]["1"]), "metadata is inconsistent"),
])
def test_tampered_or_future_metadata(saved, tmp_path, edit, match):
    with pytest.raises(FileFormatError, match=match):
        pl.load(rewrite(saved, tmp_path / "m.peeklens", meta_edit=edit))


@pytest.mark.parametrize("edit", [
    lambda m: m["fits"]["1"].__setitem__("rmse", 1e-9),
    lambda m: m["fits"]["2"]["errors"].__setitem__(0, 0.0),
    lambda m: m["info"].__setitem__("note", "edited"),
    lambda m: m.__setitem__("labels", None),
])
def test_edited_metadata_with_a_stale_digest_is_refused(saved, tmp_path, edit):
    p = tmp_path / "e.peeklens"
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(p, "w") as zout:
        for n in zin.namelist():
            raw = zin.read(n)
            if n == "meta.json":
                meta = json.loads(raw)
                edit(meta)
                raw = json.dumps(meta, indent=1).encode()
            zout.writestr(n, raw)
    with pytest.raises(FileFormatError, match="meta.json does not match its recorded checksum"):
        pl.load(p)


@pytest.mark.parametrize("meta", [b"[1, 2]", b"not json", b"\xff\xfe", b'"peeklens"'])
def test_garbage_metadata(tmp_path, meta):
    p = tmp_path / "g.peeklens"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("meta.json", meta)
    with pytest.raises(FileFormatError):
        pl.load(p)


def test_npy_header_that_lies_about_its_size(saved, tmp_path):
    """A header claiming a huge shape over a few bytes: refused before allocating it."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000000,), }"
    raw = b"\x93NUMPY\x01\x00" + np.uint16(len(header) + 1).tobytes() + header.encode() + b"\n" + b"\0" * 12
    p = rewrite(saved, tmp_path / "lie.peeklens", members={"r1.F.npy": raw},
                meta_edit=lambda m: m["shapes"].pop("r1.F"))
    with pytest.raises(FileFormatError, match=r"declares shape \(4000000000000,\).*holds 12 bytes"):
        pl.load(p)


def test_not_a_file_missing_file_and_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such results file"):
        pl.load(tmp_path / "missing.peeklens")
    with pytest.raises(FileFormatError, match="is not a file"):
        pl.load(tmp_path)
    (tmp_path / "empty.peeklens").write_bytes(b"")
    with pytest.raises(FileFormatError, match="not a peeklens results file or is truncated"):
        pl.load(tmp_path / "empty.peeklens")


def test_interrupted_save_keeps_the_previous_file(saved, tmp_path, monkeypatch):
    p = tmp_path / "keep.peeklens"
    p.write_bytes(saved.read_bytes())
    calls = []
    real = np.lib.format.write_array

    def interrupt(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pl.save(small_acts(), p)
    monkeypatch.undo()
    assert isinstance(pl.load(p), pl.Sweep)  # the old content, intact
    assert [x.name for x in tmp_path.iterdir()] == ["keep.peeklens"]  # no temporary file left


def test_save_into_missing_directory_and_unsaveable_objects(tmp_path):
    with pytest.raises(pl.InputError, match=r"directory .*nope does not exist"):
        pl.save(small_acts(), tmp_path / "nope" / "a.peeklens")
    with pytest.raises(pl.InputError, match="save\\(\\) takes Activations"):
        pl.save({"a": 1}, tmp_path / "x.peeklens")
    acts = small_acts()
    acts.labels = np.array([object()] * 12, dtype=object)
    with pytest.raises(pl.InputError, match="dtype object"):
        pl.save(acts, tmp_path / "o.peeklens")
    assert list(tmp_path.iterdir()) == []


def test_memory_mapped_blocks_save_without_loading_whole(tmp_path):
    import tracemalloc

    n, m = 1000, 20_000  # 80 MB; numpy writes non-file streams in 16 MiB chunks
    buf = np.lib.format.open_memmap(tmp_path / "b.npy", mode="w+", dtype=np.float32, shape=(n, m))
    buf[:] = 1.0
    buf[7, 9] = 2.0
    acts = pl.Activations({"big": pl.Block("big", buf.T, (m,), "layer")})
    tracemalloc.start()
    try:
        p = pl.save(acts, tmp_path / "big.peeklens")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"{peak} bytes allocated to save a {buf.nbytes}-byte block"
    back = pl.load(p)["big"].data
    assert back.shape == (m, n) and back[9, 7] == 2.0 and back.sum() == n * m + 1


def test_a_zip_claiming_an_unknown_version_is_a_file_format_error(tmp_path):
    """Found by the flipped-byte property test: a central-directory entry that needs zip version 6.4
    made zipfile raise NotImplementedError while opening the archive."""
    p = pl.save(pl.Activations.from_arrays({"a": np.ones((3, 4))}), tmp_path / "a.peeklens")
    raw = bytearray(p.read_bytes())
    at = raw.rfind(b"PK\x01\x02")  # the last central-directory entry
    raw[at + 6] = 64  # "version needed to extract": 6.4
    p.write_bytes(bytes(raw))
    with pytest.raises(pl.FileFormatError):
        pl.load(p)
