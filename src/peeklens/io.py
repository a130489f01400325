"""Save and load results without pickle: a zip of ``.npy`` arrays plus ``meta.json``.

A ``.peeklens`` file is a zip archive (readable by ``numpy.load`` as an
``.npz``) holding:

- ``meta.json``: format name and version, the object type, versions of
  peeklens / torch / numpy, every scalar and name, and a SHA-256 digest of
  every array;
- ``<key>.npy``: the arrays, referred to from ``meta.json`` by key.  Keys are
  positional (``W.0``, ``W.1``...), so block names (arbitrary text) never
  become file names.

Arrays are read with ``allow_pickle=False``: a file cannot run code.  A
truncated, tampered or future-version file raises :class:`FileFormatError`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io as _io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, Union

import numpy as np

from ._version import __version__
from ._memory import available_memory, format_bytes
from .activations import Activations, Block
from .errors import FileFormatError, InputError, MemoryLimitError
from .results import Factorization, Sweep
from .spectra import Spectrum

__all__ = ["save", "load", "FORMAT_VERSION", "read_meta"]

FORMAT_NAME = "peeklens"
FORMAT_VERSION = 1
Saveable = Union[Activations, Factorization, Sweep, Spectrum]


# ---------------------------------------------------------------------- writing
class _Writer:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, key: str, arr) -> str:
        arr = np.asarray(arr)
        if arr.dtype == object:
            raise InputError(f"cannot save array {key!r} of dtype object (no pickle in peeklens files)")
        self.arrays[key] = arr
        return key


class _HashingWriter:
    """A write-only file object that passes bytes on and keeps their SHA-256."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def write(self, b) -> int:
        self.sha.update(b)
        return self.raw.write(b)


def _jsonable(v: Any):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)


def _fit_meta(w: _Writer, fit: Factorization, prefix: str, with_inputs: bool) -> dict:
    names = list(fit.loadings)
    meta = {
        "rank": fit.rank,
        "names": names,
        "F": w.put(f"{prefix}F", fit.F),
        "W": [w.put(f"{prefix}W.{i}", fit.loadings[n]) for i, n in enumerate(names)],
        "objective": w.put(f"{prefix}objective", fit.objective),
        "errors": [float(fit.errors[n]) for n in names],
        "rmse": float(fit.rmse),
        "n_iter": int(fit.n_iter),
        "converged": bool(fit.converged),
        "seconds": float(fit.seconds),
        "settings": _jsonable(fit.settings),
        "blocks": [_jsonable(fit.blocks.get(n, {})) for n in names],
    }
    if with_inputs:
        meta.update(_shared_meta(w, fit.labels, fit.inputs, fit.blocks))
    return meta


def _shared_meta(w: _Writer, labels, inputs, blocks) -> dict:
    out: dict = {"labels": w.put("labels", labels) if labels is not None else None}
    if inputs:
        names = list(inputs)
        out["inputs"] = {
            "names": names,
            "arrays": [w.put(f"input.{i}", np.asarray(inputs[n], dtype=np.float32)) for i, n in enumerate(names)],
        }
    else:
        out["inputs"] = None
    return out


def _describe(obj: Saveable, w: _Writer, include_inputs: bool) -> dict:
    if isinstance(obj, Activations):
        names = obj.names
        return {
            "type": "Activations",
            "names": names,
            "blocks": [obj[n].info() for n in names],
            "arrays": [w.put(f"block.{i}", obj[n].data) for i, n in enumerate(names)],
            "labels": w.put("labels", obj.labels) if obj.labels is not None else None,
            "info": _jsonable(obj.meta),
        }
    if isinstance(obj, Factorization):
        return {"type": "Factorization", "fit": _fit_meta(w, obj, "", include_inputs)}
    if isinstance(obj, Sweep):
        fits = {str(r): _fit_meta(w, f, f"r{r}.", False) for r, f in obj.fits.items()}
        first = next(iter(obj.fits.values()), None)
        shared = (
            _shared_meta(w, first.labels, first.inputs if include_inputs else None, first.blocks)
            if first is not None
            else {"labels": None, "inputs": None}
        )
        return {
            "type": "Sweep",
            "ranks": obj.ranks,
            "requested": list(obj.requested),
            "interrupted": bool(obj.interrupted),
            "fits": fits,
            "info": _jsonable(obj.meta),
            **shared,
        }
    if isinstance(obj, Spectrum):
        names = obj.names
        return {
            "type": "Spectrum",
            "names": names,
            "k": obj.k,
            "values": [w.put(f"sv.{i}", obj.values[n]) for i, n in enumerate(names)],
            "entropy_rank": [float(obj.entropy_rank[n]) for n in names],
            "stable_rank": [float(obj.stable_rank[n]) for n in names],
            "method": [obj.method[n] for n in names],
            "info": _jsonable(obj.meta),
        }
    raise InputError(
        f"save() takes Activations, Factorization, Sweep or Spectrum, got {type(obj).__name__}"
    )


def save(obj: Saveable, path: str | os.PathLike, *, include_inputs: bool = True, compress: bool = False) -> Path:
    """Save ``obj`` to ``path`` (conventionally ``*.peeklens``) without pickle.

    Parameters
    ----------
    obj : Activations, Factorization, Sweep or Spectrum
    path : str or path-like
        Written atomically (a temporary file renamed into place).
    include_inputs : bool, default True
        For a Factorization or Sweep, also store the input-channel matrices so that latent images
        and top inputs can be shown without the model or the data.
    compress : bool, default False
        Deflate the arrays (smaller, slower).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, os, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"a": np.ones((3, 4))}, labels=np.arange(4))
    >>> p = pl.save(acts, os.path.join(tempfile.mkdtemp(), "a.peeklens"))
    >>> pl.load(p)["a"].data.shape
    (3, 4)
    """
    import torch

    path = Path(path)
    w = _Writer()
    body = _describe(obj, w, include_inputs)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "peeklens": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **body,
    }
    digests = {}
    if not path.parent.is_dir():
        raise InputError(f"cannot save to {path}: the directory {path.parent} does not exist; create it first")
    tmp = path.with_name(path.name + ".tmp")
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    try:
        with zipfile.ZipFile(tmp, "w", compression=mode, allowZip64=True) as zf:
            for key, arr in w.arrays.items():
                # Streamed into the archive chunk by chunk (memory-mapped blocks are never loaded whole).
                with zf.open(key + ".npy", "w", force_zip64=True) as member:
                    out = _HashingWriter(member)
                    np.lib.format.write_array(out, arr, allow_pickle=False)
                digests[key] = out.sha.hexdigest()
            meta["sha256"] = digests
            meta["shapes"] = {k: list(a.shape) for k, a in w.arrays.items()}
            zf.writestr("meta.json", json.dumps(meta, indent=1, allow_nan=True))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ---------------------------------------------------------------------- reading
#: What zipfile raises on damaged archives: bad CRCs and headers, cut streams, a flipped flag that
#: claims encryption (RuntimeError) or an unknown compression method (NotImplementedError).
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError, ValueError, zlib.error)

def _open(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise FileNotFoundError(f"no such results file: {path}")
    if not path.is_file():
        raise FileFormatError(f"{path} is not a file; give the path of a results file written by pl.save")
    try:
        return zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise FileFormatError(
            f"{path} is not a peeklens results file or is truncated ({e}); save it again with pl.save"
        ) from e


def read_meta(path: str | os.PathLike) -> dict:
    """The JSON metadata of a results file, checked for format and version, without reading arrays."""
    path = Path(path)
    with _open(path) as zf:
        return _meta(zf, path)


def _meta(zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        meta = json.loads(zf.read("meta.json").decode("utf-8"))
    except KeyError:
        raise FileFormatError(f"{path} has no meta.json: it was not written by peeklens.save") from None
    except _ZIP_ERRORS as e:  # ValueError covers JSON and UnicodeDecodeError
        raise FileFormatError(f"{path}: metadata is corrupt or truncated ({e})") from e
    if not isinstance(meta, dict):
        raise FileFormatError(f"{path}: meta.json is a {type(meta).__name__}, not an object: not a peeklens file")
    if meta.get("format") != FORMAT_NAME:
        raise FileFormatError(f"{path} is not a peeklens results file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise FileFormatError(f"{path}: format_version is missing or not an integer")
    if version > FORMAT_VERSION:
        raise FileFormatError(
            f"{path} uses format version {version}, written by peeklens {meta.get('peeklens')}; this is "
            f"peeklens {__version__} (format {FORMAT_VERSION}). Upgrade peeklens to read it"
        )
    return meta


class _Reader:
    def __init__(self, zf: zipfile.ZipFile, meta: dict, path: Path, verify: bool) -> None:
        self.zf, self.meta, self.path, self.verify = zf, meta, path, verify
        self.digests = meta.get("sha256") or {}

    def get(self, key) -> np.ndarray | None:
        if key is None:
            return None
        if not isinstance(key, str):
            raise FileFormatError(f"{self.path}: bad array reference {key!r} in metadata")
        try:
            info = self.zf.getinfo(key + ".npy")
        except KeyError:
            raise FileFormatError(f"{self.path}: array {key!r} is missing (truncated or tampered file)") from None
        self._check_size(key, info.file_size)
        try:
            raw = self.zf.read(info)
        except KeyError:
            raise FileFormatError(f"{self.path}: array {key!r} is missing (truncated or tampered file)") from None
        except _ZIP_ERRORS as e:
            raise FileFormatError(f"{self.path}: array {key!r} is corrupt or truncated ({e})") from e
        if self.verify:
            want = self.digests.get(key)
            if want is None or hashlib.sha256(raw).hexdigest() != want:
                raise FileFormatError(
                    f"{self.path}: array {key!r} does not match its recorded checksum: the file was modified "
                    "after saving or is damaged"
                )
        arr = self._read_array(key, raw)
        shape = (self.meta.get("shapes") or {}).get(key)
        if shape is not None and list(arr.shape) != list(shape):
            raise FileFormatError(f"{self.path}: array {key!r} has shape {arr.shape}, metadata says {shape}")
        return arr


    def _check_size(self, key: str, size: int) -> None:
        """Refuse a member whose unpacked size cannot fit in memory before inflating it (zip bombs)."""
        avail = available_memory()
        if avail is not None and size > avail:
            raise MemoryLimitError(
                f"{self.path}: array {key!r} unpacks to {format_bytes(size)}, more than the available memory "
                f"({format_bytes(avail)}); load it on a machine with more memory, or check where the file came from"
            )

    def _read_array(self, key: str, raw: bytes) -> np.ndarray:
        """Parse a ``.npy`` member: plain numeric or text dtypes only, with a size that matches its header."""
        f = _io.BytesIO(raw)
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as e:
            raise FileFormatError(f"{self.path}: array {key!r} is not a valid .npy array ({e})") from e
        if dtype.hasobject or dtype.kind not in "biufcUS":
            raise FileFormatError(
                f"{self.path}: array {key!r} has dtype {dtype}, which would need pickle to read; "
                "peeklens never loads pickled data (the file was not written by pl.save or was tampered with)"
            )
        need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
        have = len(raw) - f.tell()
        if need != have:
            raise FileFormatError(
                f"{self.path}: array {key!r} declares shape {shape} ({need} bytes) but holds {have} bytes "
                "(truncated or tampered file)"
            )
        try:
            return np.lib.format.read_array(_io.BytesIO(raw), allow_pickle=False)
        except ValueError as e:
            raise FileFormatError(
                f"{self.path}: array {key!r} cannot be read without pickle ({e}); peeklens never loads pickled data"
            ) from e


def _load_fit(r: _Reader, m: dict, labels, inputs) -> Factorization:
    names = list(m["names"])
    blocks = {n: dict(b) for n, b in zip(names, m["blocks"])}
    loadings = {n: r.get(k) for n, k in zip(names, m["W"])}
    F = r.get(m["F"])
    for n, W in loadings.items():
        if W.ndim != 2 or W.shape[1] != F.shape[1]:
            raise FileFormatError(f"{r.path}: loadings of {n!r} have shape {W.shape}, inconsistent with F {F.shape}")
    return Factorization(
        F=F,
        loadings=loadings,
        errors=dict(zip(names, (float(e) for e in m["errors"]))),
        rmse=float(m["rmse"]),
        objective=r.get(m["objective"]),
        n_iter=int(m["n_iter"]),
        converged=bool(m["converged"]),
        seconds=float(m["seconds"]),
        settings=dict(m["settings"]),
        blocks=blocks,
        labels=labels,
        inputs=inputs,
    )


def _load_shared(r: _Reader, m: dict):
    labels = r.get(m.get("labels"))
    inp = m.get("inputs")
    inputs = {n: r.get(k) for n, k in zip(inp["names"], inp["arrays"])} if inp else None
    return labels, inputs


def load(path: str | os.PathLike, *, verify: bool = True) -> Saveable:
    """Load a file written by :func:`save`; never unpickles anything.

    Parameters
    ----------
    path : str or path-like
    verify : bool, default True
        Check every array against the SHA-256 digest recorded at save time.

    Raises
    ------
    FileFormatError
        For a file that is not a peeklens file, is truncated or tampered, holds pickled
        (object) arrays, or was written by a newer format version.
    """
    path = Path(path)
    with _open(path) as zf:
        meta = _meta(zf, path)
        r = _Reader(zf, meta, path, verify)
        kind = meta.get("type")
        try:
            if kind == "Activations":
                names = meta["names"]
                blocks = {}
                for n, info, key in zip(names, meta["blocks"], meta["arrays"]):
                    blocks[n] = Block(n, r.get(key), tuple(info["shape"]), info["kind"], info.get("transform"))
                return Activations(blocks, labels=r.get(meta.get("labels")), meta=meta.get("info") or {})
            if kind == "Factorization":
                m = meta["fit"]
                labels, inputs = _load_shared(r, m)
                return _load_fit(r, m, labels, inputs)
            if kind == "Sweep":
                labels, inputs = _load_shared(r, meta)
                fits = {int(k): _load_fit(r, m, labels, inputs) for k, m in meta["fits"].items()}
                return Sweep(
                    fits,
                    interrupted=bool(meta.get("interrupted")),
                    requested=[int(x) for x in meta.get("requested", list(fits))],
                    meta=meta.get("info") or {},
                )
            if kind == "Spectrum":
                names = meta["names"]
                return Spectrum(
                    values={n: r.get(k) for n, k in zip(names, meta["values"])},
                    entropy_rank=dict(zip(names, map(float, meta["entropy_rank"]))),
                    stable_rank=dict(zip(names, map(float, meta["stable_rank"]))),
                    method=dict(zip(names, meta["method"])),
                    k=int(meta["k"]),
                    meta=meta.get("info") or {},
                )
        except FileFormatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise FileFormatError(f"{path}: metadata is inconsistent ({type(e).__name__}: {e})") from e
        raise FileFormatError(f"{path}: unknown object type {kind!r}")
