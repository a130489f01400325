"""Save and load results without pickle: a zip of ``.npy`` arrays plus ``meta.json``.

A ``.peeklens`` file is the payload of :mod:`peeklens.schema` (which documents every field) written
as a zip archive (readable by ``numpy.load`` as an ``.npz``):

- ``meta.json``: the schema's metadata, plus a SHA-256 digest of every array (``sha256``);
- ``meta.json.sha256``: the SHA-256 digest (hex) of the exact bytes of ``meta.json``, so that an
  edited metadata file (say a changed ``rmse``) is refused like an edited array;
- ``<key>.npy``: the arrays, referred to from ``meta.json`` by key.  Keys are positional (``W.0``,
  ``W.1``...), so block names (arbitrary text) never become file names.

Arrays are read with ``allow_pickle=False``: a file cannot run code.  A truncated, tampered or
future-version file raises :class:`FileFormatError`.  Files of format version 1 (written before the
metadata digest existed) still load, with a warning that their metadata is not covered.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import schema
from ._memory import available_memory, format_bytes
from .activations import Activations
from .errors import FileFormatError, InputError, MemoryLimitError
from .nmf.distributed import gather_for_save
from .results import Factorization, Sweep
from .schema import FORMAT_VERSION
from .spectra import Spectrum

__all__ = ["save", "load", "to_bytes", "FORMAT_VERSION", "read_meta", "META_DIGEST"]

#: The member holding the SHA-256 digest of ``meta.json``'s bytes (format version 2 on).
META_DIGEST = "meta.json.sha256"
Saveable = Activations | Factorization | Sweep | Spectrum


# ---------------------------------------------------------------------- writing
class _HashingWriter:
    """A write-only file object that passes bytes on and keeps their SHA-256."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def write(self, b) -> int:
        self.sha.update(b)
        return self.raw.write(b)


def _write(f, meta: dict, arrays: dict, compress: bool) -> None:
    """Write a payload as a zip to the binary file object ``f``."""
    digests = {}
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, "w", compression=mode, allowZip64=True) as zf:
        for key, arr in arrays.items():
            # Streamed into the archive chunk by chunk (memory-mapped blocks are never loaded whole).
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                out = _HashingWriter(member)
                np.lib.format.write_array(out, arr, allow_pickle=False)
            digests[key] = out.sha.hexdigest()
        meta["sha256"] = digests
        text = json.dumps(meta, indent=1, allow_nan=True).encode("utf-8")
        zf.writestr("meta.json", text)
        zf.writestr(META_DIGEST, hashlib.sha256(text).hexdigest())


def to_bytes(obj: Saveable, *, include_inputs: bool = False, compress: bool = True, **kwargs) -> bytes:
    """The bytes of the ``.peeklens`` file of ``obj`` (what :func:`save` writes), built in memory.

    By default without the full inputs and deflated: what the offline report embeds.

    >>> import numpy as np, peeklens as pl
    >>> to_bytes(pl.Activations.from_arrays({"a": np.ones((2, 3))}))[:2]
    b'PK'
    """
    meta, arrays = schema.to_payload(obj, include_inputs=include_inputs, **kwargs)
    buf = _io.BytesIO()
    _write(buf, meta, arrays, compress)
    return buf.getvalue()


def save(
    obj: Saveable,
    path: str | os.PathLike,
    *,
    include_inputs: bool = True,
    compress: bool = False,
    top_k: int = schema.DISPLAY_TOP_K,
    class_names=None,
    decode=None,
) -> Path:
    """Save ``obj`` to ``path`` (conventionally ``*.peeklens``) without pickle.

    Parameters
    ----------
    obj : Activations, Factorization, Sweep or Spectrum
    path : str or path-like
        Written atomically (a temporary file renamed into place). For the result of a
        ``distributed=True`` fit, call ``save`` on every process (it gathers ``F``): rank 0 writes the
        one file, equal to what a single process would write for the same data.
    include_inputs : bool, default True
        For a Factorization or Sweep, also store the input-channel matrices so that latent images
        and top inputs can be shown without the model or the data.
    compress : bool, default False
        Deflate the arrays (smaller, slower).
    top_k : int, default 8
        Thumbnails per factor kept in the schema's ``display`` section (the images the views show
        when the full inputs are not stored).
    class_names : list of str, optional
        Names of the label classes, kept for the views.
    decode : list of str or callable, optional
        For token samples (``samples="tokens"``): a vocabulary or a tokenizer's ``decode``; the text of the
        samples the views show (each token in context) is kept (:func:`peeklens.schema.token_texts`).

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
    obj = gather_for_save(obj)  # collective for a distributed fit (call it on every process): rank 0 gets it all
    if obj is None:  # another process of a distributed fit: rank 0 writes the file
        return Path(path)
    path = Path(path)
    meta, arrays = schema.to_payload(
        obj, include_inputs=include_inputs, top_k=top_k, class_names=class_names, decode=decode
    )
    if not path.parent.is_dir():
        raise InputError(f"cannot save to {path}: the directory {path.parent} does not exist; create it first")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            _write(f, meta, arrays, compress)
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
    except (zipfile.LargeZipFile, *_ZIP_ERRORS) as e:  # a flipped byte can claim a zip version zipfile lacks
        raise FileFormatError(
            f"{path} is not a peeklens results file or is truncated ({e}); save it again with pl.save"
        ) from e


def read_meta(path: str | os.PathLike) -> dict:
    """The JSON metadata of a results file, checked for format and version, without reading arrays."""
    path = Path(path)
    with _open(path) as zf:
        return _meta(zf, path)


def _meta(zf: zipfile.ZipFile, path: Path, verify: bool = True) -> dict:
    try:
        raw = zf.read("meta.json")
        meta = json.loads(raw.decode("utf-8"))
    except KeyError:
        raise FileFormatError(f"{path} has no meta.json: it was not written by peeklens.save") from None
    except _ZIP_ERRORS as e:  # ValueError covers JSON and UnicodeDecodeError
        raise FileFormatError(f"{path}: metadata is corrupt or truncated ({e})") from e
    version = schema.check_header(meta, str(path))
    if not verify:
        return meta
    if version >= 2:
        try:
            want = zf.read(META_DIGEST).decode("ascii").strip()
        except KeyError:
            raise FileFormatError(
                f"{path}: {META_DIGEST} is missing, so the metadata cannot be checked (truncated or tampered "
                "file); save it again with pl.save"
            ) from None
        except (*_ZIP_ERRORS, UnicodeDecodeError) as e:
            raise FileFormatError(f"{path}: {META_DIGEST} is corrupt ({e})") from e
        if hashlib.sha256(raw).hexdigest() != want:
            raise FileFormatError(
                f"{path}: meta.json does not match its recorded checksum: the metadata was edited after "
                "saving or is damaged (pl.load(path, verify=False) reads it anyway)"
            )
    else:
        warnings.warn(
            f"{path} is a format-1 file: its metadata is not covered by a checksum; load it and save it "
            "again with pl.save to protect it",
            UserWarning,
            stacklevel=3,
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


def load(path: str | os.PathLike, *, verify: bool = True) -> Saveable:
    """Load a file written by :func:`save`; never unpickles anything.

    Parameters
    ----------
    path : str or path-like
    verify : bool, default True
        Check ``meta.json`` and every array against the SHA-256 digests recorded at save time.

    Raises
    ------
    FileFormatError
        For a file that is not a peeklens file, is truncated or tampered (arrays or metadata), holds
        pickled (object) arrays, or was written by a newer format version.

    Examples
    --------
    >>> import numpy as np, tempfile, os, peeklens as pl
    >>> p = pl.save(pl.Activations.from_arrays({"a": np.ones((2, 3))}), os.path.join(tempfile.mkdtemp(), "a.peeklens"))
    >>> type(pl.load(p)).__name__
    'Activations'
    """
    path = Path(path)
    with _open(path) as zf:
        meta = _meta(zf, path, verify)
        r = _Reader(zf, meta, path, verify)
        return schema.from_payload(meta, r.get, where=str(path))
