"""A head computed once: a T1's scalp surface and its proximity queries, cached on disk.

Design notes: ``docs/head.md``, section ``tmsplan.head.cache``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from warnings import warn

import numpy as np

from tmsplan import __version__
from tmsplan.coil.placement import ScalpProximity
from tmsplan.errors import SpaceError, TmsplanWarning
from tmsplan.head.checks import SkinVoxels
from tmsplan.head.scalp import ScalpSurface
from tmsplan.io.images import ImageLike, file_sha256, image_source
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME

__all__ = [
    "HEAD_ALGORITHM_VERSION",
    "Head",
    "cache_folder",
    "derived_once",
    "load_head",
    "registration_once",
    "transform_once",
]

HEAD_ALGORITHM_VERSION = 3
"""Version of what cached heads hold; bump it when :mod:`tmsplan.head.scalp` changes the surface
it computes or :mod:`tmsplan.clinic.eeg1020` the positions it places on it (old cache entries
are then ignored and rebuilt)."""

_FORMAT = "tmsplan-head-v2"  # v2: the skin voxels
_DERIVED_FORMAT = "tmsplan-head-derived-v1"
_MEMO_SIZE = 4
_MEMO: OrderedDict[tuple, Head] = OrderedDict()
_REGISTRATIONS: OrderedDict[tuple, Any] = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class Head:
    """A head image's scalp surface with the queries planning needs, built once.

    Attributes
    ----------
    scalp : ScalpSurface
        Closed outward scalp mesh in world RAS+ mm of the T1 (frame ``frame``),
        its field-of-view flags, defacing flag and notes.
    frame : str
        World frame of the surface (``"T1w"``, ``"MNI152NLin6Asym"``).
    t1_path : str or None
        Absolute path of the T1 file (None for an image given in memory).
    t1_sha256 : str or None
        SHA-256 of the T1 file (None for an image given in memory).
    t1_shape : tuple of int
        Voxel grid of the T1.
    t1_affine : (4, 4) float64
        Voxel -> world affine of the T1.
    proximity : ScalpProximity
        Nearest-point and inside queries on ``scalp.mesh``, set up once.
    skin_voxels : SkinVoxels or None
        The T1's voxels at or above the skin level, for the entry checks (None
        when the surface has no skin level).
    landmarks : dict or None
        Named head landmarks (name -> (3,) mm in ``frame``) when known.
    cache_path : pathlib.Path or None
        The cache entry this head was read from or written to.
    from_cache : bool
        True when read from the disk cache rather than computed.
    derived : dict
        Data computed from this head alone, kept in memory (see :func:`derived_once`).
    """

    scalp: ScalpSurface
    frame: str
    t1_path: str | None
    t1_sha256: str | None
    t1_shape: tuple[int, int, int]
    t1_affine: np.ndarray = field(repr=False)
    proximity: ScalpProximity = field(repr=False, compare=False)
    skin_voxels: SkinVoxels | None = field(default=None, repr=False, compare=False)
    landmarks: dict | None = None
    cache_path: Path | None = None
    from_cache: bool = False
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.skin_voxels is None and self.scalp.skin_level is not None:
            raise ValueError(
                "a Head whose scalp has a skin level needs its skin_voxels "
                "(SkinVoxels.from_image(t1, scalp.skin_level)): the entry checks sample them."
            )

    @property
    def mesh(self):
        """The scalp mesh (``trimesh.Trimesh``, world RAS+ mm of ``frame``)."""
        return self.scalp.mesh

    @property
    def fov_boundary(self) -> np.ndarray:
        """``(n_vertices,)`` bool: vertices where the field of view cuts the head."""
        return self.scalp.fov_boundary

    @property
    def notes(self) -> tuple[str, ...]:
        """Notes about the head image (from the scalp extraction)."""
        return self.scalp.notes

    def check_matches(self, t1: ImageLike, *, frame: str, t1_sha256: str | None = None) -> None:
        """Refuse to serve as the head of another image or frame.

        Parameters
        ----------
        t1 : str, os.PathLike or nibabel image
            The head image a plan uses.
        frame : str
            The frame the plan works in.
        t1_sha256 : str, optional
            The file's SHA-256 when already computed.

        Raises
        ------
        SpaceError
            Another frame, another file checksum, or (images in memory) another
            grid or affine.
        """
        if frame != self.frame:
            raise SpaceError(
                f"the head given (head=) is in frame {self.frame!r}, but the plan is in "
                f"{frame!r}; load the head with load_head(t1, frame={frame!r})."
            )
        source = image_source(t1)
        if source is not None and self.t1_sha256 is not None:
            digest = t1_sha256 or file_sha256(source)
            if digest != self.t1_sha256:
                raise SpaceError(
                    f"the head given (head=) was built from another image than the T1 "
                    f"{source} (checksums differ); load the head from this T1."
                )
            return
        import nibabel as nib

        img = nib.load(source) if source is not None else t1
        if tuple(int(n) for n in img.shape[:3]) != tuple(self.t1_shape) or not np.allclose(
            img.affine, self.t1_affine, atol=1e-6
        ):
            raise SpaceError(
                "the head given (head=) was built from an image with another grid or affine "
                "than the T1; load the head from this T1."
            )


# --------------------------------------------------------------------------- cache


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder where tmsplan keeps computed heads (not created here).

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Use this folder instead.

    Returns
    -------
    pathlib.Path
        ``cache_dir`` if given, else ``$TMSPLAN_CACHE_DIR``, else
        ``$XDG_CACHE_HOME/tmsplan``, else ``~/.cache/tmsplan``.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("TMSPLAN_CACHE_DIR"):
        return Path(os.environ["TMSPLAN_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "tmsplan"
    return Path.home() / ".cache" / "tmsplan"


def _entry_key(t1_sha256: str, frame: str) -> str:
    text = f"{_FORMAT}|{t1_sha256}|{frame}|tmsplan {__version__}|algorithm {HEAD_ALGORITHM_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _arrays_checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _meta(head: Head) -> dict:
    return {
        "format": _FORMAT,
        "frame": head.frame,
        "t1_sha256": head.t1_sha256,
        "t1_shape": list(head.t1_shape),
        "t1_affine": np.asarray(head.t1_affine, dtype=np.float64).tolist(),
        "defaced": bool(head.scalp.defaced),
        "notes": list(head.scalp.notes),
        "skin_level": None if head.scalp.skin_level is None else float(head.scalp.skin_level),
        "genus": int(head.scalp.genus),
        "voxel_mm": [float(v) for v in head.scalp.voxel_mm],
        "tmsplan_version": __version__,
        "head_algorithm_version": HEAD_ALGORITHM_VERSION,
    }


def _encode(head: Head) -> bytes:
    arrays = {
        "vertices": np.asarray(head.scalp.vertices, dtype=np.float64),
        "faces": np.asarray(head.scalp.faces, dtype=np.int32),
        "fov_boundary": np.asarray(head.fov_boundary, dtype=bool),
        "skin_bits": (np.zeros(0, np.uint8) if head.skin_voxels is None else head.skin_voxels.bits),
    }
    meta = {**_meta(head), "checksum": _arrays_checksum(arrays)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array(json.dumps(meta)), **arrays)
    return buffer.getvalue()


def _decode(path: Path, *, t1_sha256: str, frame: str, t1_path: str) -> Head | None:
    """The head stored at ``path``, or None when it is missing, corrupt or another key's."""
    try:
        data = path.read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {
                "vertices": stored["vertices"],
                "faces": stored["faces"],
                "fov_boundary": stored["fov_boundary"],
                "skin_bits": stored["skin_bits"],
            }
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError):
        return None
    except Exception:  # noqa: BLE001 - zipfile errors and the like: an untrusted entry
        return None
    expected = {
        "format": _FORMAT,
        "frame": frame,
        "t1_sha256": t1_sha256,
        "tmsplan_version": __version__,
        "head_algorithm_version": HEAD_ALGORITHM_VERSION,
    }
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in expected.items()):
        return None
    if meta.get("checksum") != _arrays_checksum(arrays):
        return None
    vertices, fov = arrays["vertices"], arrays["fov_boundary"]
    faces = arrays["faces"].astype(np.int64)
    if vertices.ndim != 2 or vertices.shape[1:] != (3,) or fov.shape != (len(vertices),):
        return None
    if (
        faces.ndim != 2
        or faces.shape[1:] != (3,)
        or faces.min() < 0
        or faces.max() >= len(vertices)
    ):
        return None
    try:  # what the entry self-checks need: the skin level in the T1, genus, voxel size
        level = meta["skin_level"]
        skin_level = None if level is None else float(level)
        genus, voxel_mm = int(meta["genus"]), tuple(float(v) for v in meta["voxel_mm"])
    except (KeyError, TypeError, ValueError):
        return None
    if len(voxel_mm) != 3:
        return None
    t1_shape = tuple(int(n) for n in meta["t1_shape"])
    t1_affine = np.asarray(meta["t1_affine"], dtype=np.float64)
    skin_voxels = None
    if skin_level is not None:
        bits = arrays["skin_bits"]
        if bits.dtype != np.uint8 or bits.shape != (-(-int(np.prod(t1_shape)) // 8),):
            return None
        skin_voxels = SkinVoxels(bits, t1_shape, t1_affine)
    scalp = ScalpSurface(
        (vertices, faces),  # the trimesh mesh is built only if something asks for it
        frame=frame,
        fov_boundary=fov,
        defaced=bool(meta["defaced"]),
        notes=tuple(str(n) for n in meta["notes"]),
        skin_level=skin_level,
        genus=genus,
        voxel_mm=voxel_mm,
    )
    return Head(
        scalp=scalp,
        frame=frame,
        t1_path=t1_path,
        t1_sha256=t1_sha256,
        t1_shape=t1_shape,
        t1_affine=t1_affine,
        proximity=ScalpProximity(scalp, fov),
        skin_voxels=skin_voxels,
        cache_path=path,
        from_cache=True,
    )


def _remember(key: tuple, value: Any, memo: OrderedDict) -> None:
    with _LOCK:
        memo[key] = value
        memo.move_to_end(key)
        while len(memo) > _MEMO_SIZE:
            memo.popitem(last=False)


def _recall(key: tuple, memo: OrderedDict) -> Any:
    with _LOCK:
        value = memo.get(key)
        if value is not None:
            memo.move_to_end(key)
        return value


def load_head(
    t1: ImageLike | None = None,
    *,
    frame: str | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Head:
    """The head of a T1 (its scalp surface and queries), computed once and cached.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image, optional
        Whole-head T1 (not skull-stripped). ``None``: the embedded 1 mm
        MNI152NLin6Asym head.
    frame : str, optional
        Name of the T1's world frame (default ``"T1w"``, or
        ``"MNI152NLin6Asym"`` for the embedded head).
    cache : bool, keyword-only
        Read and write the disk cache (and the in-process memory). False
        (``--no-cache``) always computes the surface and stores nothing.
    cache_dir : str or os.PathLike, optional
        Cache folder (default: see :func:`cache_folder`).

    Returns
    -------
    Head

    Raises
    ------
    ImageError
        The T1 is missing or invalid.
    HeadSurfaceError
        No usable scalp surface (no head, skull-stripped, ...).
    """
    import nibabel as nib

    from tmsplan.head.scalp import scalp_surface
    from tmsplan.io.bundled import mni_head_path
    from tmsplan.io.images import check_img

    if t1 is None:
        t1 = mni_head_path(1)
        frame = MNI_FRAME if frame is None else frame
    frame = SUBJECT_FRAME if frame is None else frame
    if not isinstance(frame, str) or not frame:
        raise ValueError(f"frame must be a non-empty string, got {frame!r}")
    source = image_source(t1)
    if source is not None and not Path(source).is_file():
        check_img(t1, name="--t1")  # the gate's one-line message for a missing file
    t1_path = str(Path(source).resolve()) if source is not None else None
    t1_sha256 = file_sha256(source) if source is not None else None
    use_cache = cache and t1_sha256 is not None
    folder = cache_folder(cache_dir) / "heads"
    path = folder / f"{_entry_key(t1_sha256, frame)}.npz" if use_cache else None
    if use_cache:
        memo_key = (t1_sha256, frame, str(folder))
        head = _recall(memo_key, _MEMO)
        if head is not None:
            return head if head.t1_path == t1_path else replace(head, t1_path=t1_path)
        head = _decode(path, t1_sha256=t1_sha256, frame=frame, t1_path=t1_path)
        if head is not None:
            _remember(memo_key, head, _MEMO)
            return head
    img = check_img(t1, name="--t1")
    scalp = scalp_surface(img, frame=frame, name="--t1")
    header_img = nib.load(source) if source is not None else img
    head = Head(
        scalp=scalp,
        frame=frame,
        t1_path=t1_path,
        t1_sha256=t1_sha256,
        t1_shape=tuple(int(n) for n in header_img.shape[:3]),
        t1_affine=np.asarray(header_img.affine, dtype=np.float64),
        proximity=ScalpProximity(scalp, scalp.fov_boundary),
        skin_voxels=(
            None if scalp.skin_level is None else SkinVoxels.from_image(img, scalp.skin_level)
        ),
        cache_path=path,
        from_cache=False,
    )
    if use_cache:
        from tmsplan.io.outputs import write_bytes

        try:
            write_bytes(path, _encode(head), overwrite=True)
        except OSError as exc:
            warn(
                f"could not write the head cache {path} ({exc.strerror or exc}); the head "
                "is rebuilt next time. Set TMSPLAN_CACHE_DIR to a writable folder or use "
                "--no-cache.",
                TmsplanWarning,
                stacklevel=2,
            )
        _remember(memo_key, head, _MEMO)
    return head


def _derived_checksum(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _read_derived(path: Path, request: dict) -> Any:
    """The data stored at ``path`` for ``request``, or None (missing, corrupt, another's)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(stored, dict)
        or stored.get("format") != _DERIVED_FORMAT
        or stored.get("request") != request
        or stored.get("checksum") != _derived_checksum(stored.get("data"))
    ):
        return None
    return stored["data"]


def derived_once(head: Head, name: str, key: dict, compute: Callable[[], Any]) -> Any:
    """Data computed from a head alone (e.g. its 10-20 positions), once, cached with the head.

    Kept in the head's memory and, for a head in the disk cache, in a JSON file
    beside its entry (``<entry>.<name>-<digest>.json``: the request, the data and
    a SHA-256 of the data; written atomically). A file that cannot be read,
    belongs to another request or fails its checksum is recomputed and rewritten.
    The head entry's key (T1 checksum, frame, tmsplan version,
    :data:`HEAD_ALGORITHM_VERSION`) names the file, so a new head never reuses it.

    Parameters
    ----------
    head : Head
    name : str
        What the data is (a file-name word, e.g. ``"eeg1020"``).
    key : dict
        JSON-ready inputs besides the head that the data depends on (e.g. the
        landmarks); floats are compared exactly.
    compute : callable
        ``compute() -> data``, JSON-ready (floats round-trip exactly).

    Returns
    -------
    object
        The data (the same object on every call in a process: do not modify it).
    """
    request = json.loads(json.dumps({"name": name, "key": key}, sort_keys=True))
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:24]
    with _LOCK:
        if digest in head.derived:
            return head.derived[digest]
    path = None
    if head.cache_path is not None:
        path = head.cache_path.with_name(f"{head.cache_path.stem}.{name}-{digest}.json")
        data = _read_derived(path, request)
        if data is not None:
            with _LOCK:
                head.derived[digest] = data
            return data
    data = json.loads(json.dumps(compute()))  # stored as it will be read back
    if path is not None:
        from tmsplan.io.outputs import write_text

        text = json.dumps(
            {
                "format": _DERIVED_FORMAT,
                "request": request,
                "checksum": _derived_checksum(data),
                "data": data,
            }
        )
        try:
            write_text(path, text + "\n", overwrite=True)
        except OSError:  # an unwritable cache: load_head has said so; recomputed next time
            pass
    with _LOCK:
        head.derived[digest] = data
    return data


def _image_digest(img) -> str:
    """SHA-256 of an image's voxels, dtype, shape and affine (an image in memory)."""
    data = np.ascontiguousarray(np.asarray(img.dataobj))
    digest = hashlib.sha256(data.view(np.uint8).reshape(-1))
    digest.update(np.asarray(img.affine, dtype=np.float64).tobytes())
    digest.update(f"{data.dtype.str}|{data.shape}".encode())
    return digest.hexdigest()


def transform_once(
    path: str | os.PathLike,
    *,
    kind: str | None,
    reference,
    moving,
    accept_poor_fit: bool = False,
):
    """An MNI -> T1 transform file read (and fit-checked) once per process.

    Reading a transform checks that it fits the head (about 1 s); several targets
    on one head reuse the first reading. Keyed by the file's checksum, ``kind``,
    the reference image's voxels and affine, and ``moving``.

    Parameters
    ----------
    path : str or os.PathLike
        The transform file.
    kind : {"affine", "itk", "fsl"} or None
        Reader (None: from the file name).
    reference : nibabel.Nifti1Image
        The checked T1.
    moving : str, os.PathLike or image
        FSL only: the MNI image given to FLIRT.
    accept_poor_fit : bool
        Keep a transform that fits the T1 poorly (a loud warning is recorded).

    Returns
    -------
    tmsplan.xfm.transforms.MniToSubject
    """
    from tmsplan.xfm.transforms import load_mni_to_subject

    source = image_source(moving) if moving is not None else None
    if not Path(path).is_file() or (moving is not None and source is None):
        return load_mni_to_subject(
            path, kind=kind, reference=reference, moving=moving, accept_poor_fit=accept_poor_fit
        )
    where = str(Path(path).resolve())  # describe() names the file
    digest = _image_digest(reference)
    key = ("transform", where, file_sha256(path), kind, digest, source, bool(accept_poor_fit))
    xfm = _recall(key, _REGISTRATIONS)
    if xfm is None:
        xfm = load_mni_to_subject(
            path, kind=kind, reference=reference, moving=moving, accept_poor_fit=accept_poor_fit
        )
        _remember(key, xfm, _REGISTRATIONS)
    return xfm


def registration_once(t1_img, *, kind: str):
    """The built-in MNI -> T1 registration of an image, computed once per process.

    Several targets planned on one head with ``--register`` reuse the first
    registration (it is deterministic: same seed, one thread). The last few
    results are kept, keyed by the image's voxels, affine and ``kind``.

    Parameters
    ----------
    t1_img : nibabel.Nifti1Image
        The checked head image.
    kind : {"affine", "nonlinear"}
        Registration kind.

    Returns
    -------
    tmsplan.xfm.registration.RegistrationResult
    """
    from tmsplan.xfm.registration import register_mni_to_t1

    key = ("registration", _image_digest(t1_img), kind)
    result = _recall(key, _REGISTRATIONS)
    if result is None:
        result = register_mni_to_t1(t1_img, kind=kind)
        _remember(key, result, _REGISTRATIONS)
    return result
