"""The image gate: every image argument of tmsplan goes through :func:`check_img`.

Design notes: ``docs/images.md``, section ``tmsplan.io.images``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from tmsplan.errors import ImageError, SpaceError

__all__ = [
    "ImageLike",
    "check_img",
    "check_img_header",
    "file_sha256",
    "image_source",
    "block_reduce",
    "voxel_to_world",
    "world_to_voxel",
    "nearest_voxel",
    "resample_to_img",
    "same_grid",
    "img_on_grid",
    "affine_source",
]

ImageLike = str | os.PathLike | nib.spatialimages.SpatialImage
"""A path to a NIfTI file, or a nibabel image."""

NanPolicy = Literal["error", "zero"]

_NIFTI_SUFFIXES = (".nii", ".nii.gz", ".img", ".hdr", ".mgz", ".mgh")


def _describe(img: ImageLike) -> str:
    if isinstance(img, (str, os.PathLike)):
        return f"'{os.fspath(img)}'"
    return "the given image"


def _load(img: ImageLike, name: str) -> nib.spatialimages.SpatialImage:
    if isinstance(img, nib.spatialimages.SpatialImage):
        return img
    if not isinstance(img, (str, os.PathLike)):
        raise ImageError(
            f"{name}: expected a path to a NIfTI file or a nibabel image, got {type(img).__name__}."
        )
    path = Path(img)
    if not path.exists():
        raise ImageError(f"{name}: file '{path}' does not exist; check the path.")
    if path.is_dir():
        raise ImageError(
            f"{name}: '{path}' is a folder; give the NIfTI file (.nii or .nii.gz) inside it."
        )
    lower = path.name.lower()
    if not lower.endswith(_NIFTI_SUFFIXES):
        raise ImageError(
            f"{name}: '{path}' is not a NIfTI image (expected .nii or .nii.gz); "
            "convert DICOM with dcm2niix first."
        )
    try:
        loaded = nib.load(path)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, zlib.error, ValueError) as exc:
        raise ImageError(
            f"{name}: '{path}' cannot be read as NIfTI ({_short(exc)}); "
            "the file may be truncated or not an image."
        ) from None
    if not isinstance(loaded, nib.spatialimages.SpatialImage):
        raise ImageError(f"{name}: '{path}' is not a volume image.")
    if isinstance(loaded, nib.analyze.AnalyzeImage) and not isinstance(
        loaded, (nib.Nifti1Pair, nib.Nifti2Pair)
    ):
        raise ImageError(
            f"{name}: '{path}' is an Analyze 7.5 image, whose left/right orientation is not "
            "stored (readers guess it); convert the original data to NIfTI (dcm2niix)."
        )
    return loaded


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def affine_source(img: nib.spatialimages.SpatialImage) -> str:
    """Say which header field gives the image's affine.

    Parameters
    ----------
    img : nibabel image

    Returns
    -------
    str
        ``"sform"``, ``"qform"`` or ``"none"`` (NIfTI with both codes 0);
        ``"affine"`` for non-NIfTI formats that carry only an affine.
    """
    header = img.header
    if isinstance(header, nib.nifti1.Nifti1Header):
        if int(header["sform_code"]) > 0:
            return "sform"
        if int(header["qform_code"]) > 0:
            return "qform"
        return "none"
    return "affine"


def check_img_header(img: ImageLike, *, name: str = "image", ndim: int = 3) -> nib.Nifti1Image:
    """Load an image argument and check what its header says, without reading its voxels.

    The first half of :func:`check_img`: file type, dimensionality and affine,
    with the same messages. The voxels (NaN, truncation, all zeros) are checked
    when :func:`check_img` reads them.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        Path to a ``.nii``/``.nii.gz`` file, or an image already in memory.
    name : str
        Name of the argument, used in error messages.
    ndim : int
        Required dimensionality (a 4-D image with one volume counts as 3-D).

    Returns
    -------
    nibabel.Nifti1Image
        The image as loaded, its voxels still on disk for a path (an MGH image
        as NIfTI with header codes 1, as :func:`check_img` gives it).

    Raises
    ------
    ImageError
        Missing or unreadable file, wrong dimensionality, or no usable affine.
    """
    loaded = _load(img, name)
    shape = tuple(int(s) for s in loaded.shape)
    if len(shape) == 4 and shape[3] == 1 and ndim == 3:
        shape = shape[:3]
    if len(shape) != ndim:
        hint = (
            "select one volume first (e.g. nilearn.image.index_img(img, 0))"
            if len(shape) > ndim
            else "give a volume image"
        )
        raise ImageError(
            f"{name}: {_describe(img)} is {len(loaded.shape)}-D with shape "
            f"{tuple(loaded.shape)}, but a {ndim}-D image is needed; {hint}."
        )
    if affine_source(loaded) == "none":
        raise ImageError(
            f"{name}: {_describe(img)} has neither an sform nor a qform (both codes are 0), so "
            "its voxel-to-world mapping is unknown; re-export it from the converter "
            "(dcm2niix sets both) or set one with nibabel (img.set_sform(affine, code=1))."
        )
    affine = np.asarray(loaded.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise ImageError(
            f"{name}: {_describe(img)} has an unusable affine (singular or not finite): "
            f"{affine.tolist()}."
        )
    if isinstance(loaded, nib.Nifti1Image):
        return loaded
    as_nifti = nib.Nifti1Image(loaded.dataobj, affine)  # stays a proxy: nothing read
    as_nifti.set_sform(affine, code=1)
    as_nifti.set_qform(affine, code=1)
    return as_nifti


def check_img(
    img: ImageLike,
    *,
    name: str = "image",
    ndim: int = 3,
    nan_policy: NanPolicy = "error",
    require_signal: bool = True,
) -> nib.Nifti1Image:
    """Load and validate an image argument (the one gate for all images).

    Idempotent: a checked image passes again unchanged in content.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        Path to a ``.nii``/``.nii.gz`` file, or an image already in memory.
    name : str
        Name of the argument, used in error messages: the Python parameter
        (e.g. ``"activation"``); the command line shows its flag instead.
    ndim : int
        Required dimensionality. A 4-D image whose 4th axis has length 1 is
        accepted as 3-D.
    nan_policy : {"error", "zero"}
        What to do with NaN voxels. ``"zero"`` sets them to 0, as SPM writes NaN
        outside its analysis mask; an all-NaN image is an error either way.
    require_signal : bool
        Refuse an image whose finite values are all zero.

    Returns
    -------
    nibabel.Nifti1Image
        Float64 data in memory, the affine taken from sform (else qform), and
        the NIfTI header codes kept (MGH images, which carry only an affine,
        get code 1).

    Raises
    ------
    ImageError
        Missing or unreadable file, wrong dimensionality, non-finite or empty
        data, or no usable affine.
    """
    loaded = check_img_header(img, name=name, ndim=ndim)
    what = _describe(img)
    shape = tuple(int(s) for s in loaded.shape)[:ndim]
    affine = np.asarray(loaded.affine, dtype=np.float64)
    try:
        data = np.asarray(loaded.get_fdata(dtype=np.float64)).reshape(shape)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        raise ImageError(
            f"{name}: the voxel data of {what} cannot be read ({_short(exc)}); "
            "the file is probably truncated; copy or export it again."
        ) from None
    nan = np.isnan(data)
    if nan.all():
        raise ImageError(f"{name}: {what} contains only NaN values; it holds no data.")
    if np.isinf(data).any():
        raise ImageError(f"{name}: {what} contains infinite values; fix the map that produced it.")
    if nan.any():
        if nan_policy == "error":
            raise ImageError(
                f"{name}: {what} contains {int(nan.sum())} NaN voxels, which are not "
                "allowed here; replace them, e.g. with "
                "nilearn.image.math_img('np.nan_to_num(img)', img=...)."
            )
        data = np.where(nan, 0.0, data)
    if require_signal and not np.any(data):
        raise ImageError(f"{name}: {what} is all zeros; it holds no data.")
    out = nib.Nifti1Image(data, affine, header=loaded.header.copy())
    out.set_data_dtype(np.float64)
    return out


def image_source(img: ImageLike) -> str | None:
    """Return the file path of an image argument, or None for an in-memory image."""
    if isinstance(img, (str, os.PathLike)):
        return os.fspath(img)
    filename = img.get_filename() if hasattr(img, "get_filename") else None
    return os.fspath(filename) if filename else None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str
        64 lowercase hex characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def voxel_to_world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """Map voxel indices to world millimetres.

    Parameters
    ----------
    affine : (4, 4) float
        Voxel-to-world matrix of the image.
    ijk : (n, 3) float
        Voxel coordinates.

    Returns
    -------
    (n, 3) float64
        World coordinates in the image's world frame (RAS+, mm).
    """
    from nibabel.affines import apply_affine

    return apply_affine(affine, np.asarray(ijk, dtype=np.float64).reshape(-1, 3))


def world_to_voxel(affine: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Map world millimetres to (fractional) voxel indices.

    Parameters
    ----------
    affine : (4, 4) float
        Voxel-to-world matrix of the image.
    xyz : (n, 3) float
        World coordinates (RAS+, mm).

    Returns
    -------
    (n, 3) float64
        Voxel coordinates (not rounded).
    """
    from nibabel.affines import apply_affine

    return apply_affine(np.linalg.inv(affine), np.asarray(xyz, dtype=np.float64).reshape(-1, 3))


def nearest_voxel(
    data: np.ndarray, affine: np.ndarray, xyz: np.ndarray, *, above: float = 0.0
) -> tuple[np.ndarray | None, float]:
    """Centre of the voxel with ``data > above`` nearest to a world point.

    Searches a box around the point that grows until it holds every voxel
    closer than the best found, so the answer is the same as a search of the
    whole volume (ties go to the first voxel in C order) at a fraction of the cost.

    Parameters
    ----------
    data : (i, j, k) array
        Volume, e.g. a mask (not modified; only the searched box is compared).
    affine : (4, 4) float
        Voxel-to-world matrix of ``data``.
    xyz : (3,) float
        World point (RAS+ mm of the image's frame).
    above : float
        Voxels with a value greater than this count.

    Returns
    -------
    centre : (3,) float64 or None
        World mm of the nearest counted voxel; None when there is none.
    distance : float
        mm from ``xyz`` (inf when there is none).
    """
    from nibabel.affines import apply_affine

    affine = np.asarray(affine, dtype=np.float64)
    xyz = np.asarray(xyz, dtype=np.float64).reshape(3)
    inverse = np.linalg.inv(affine)
    centre = inverse[:3, :3] @ xyz + inverse[:3, 3]
    per_mm = np.linalg.norm(inverse[:3, :3], axis=1)  # voxels per world mm along each axis
    shape = np.array(data.shape[:3], dtype=np.int64)
    radius = 8.0
    while True:
        # every voxel within `radius` mm of xyz lies in this box
        lo = np.clip(np.floor(centre - radius * per_mm).astype(np.int64), 0, shape)
        hi = np.clip(np.ceil(centre + radius * per_mm).astype(np.int64) + 1, 0, shape)
        whole = bool(np.all(lo == 0) and np.all(hi == shape))
        box = np.asarray(data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]) > above
        inside = np.argwhere(box)
        if inside.size:
            world = apply_affine(affine, inside + lo)
            squared = np.sum((world - xyz) ** 2, axis=1)
            best = int(np.argmin(squared))
            distance = float(np.sqrt(squared[best]))
            if distance <= radius or whole:
                return world[best], distance
        if whole:
            return None, float("inf")
        radius *= 2.0


def block_reduce(data: np.ndarray, factors, *, func=np.mean, **func_kwargs) -> np.ndarray:
    """Reduce ``factors``-sized blocks of a volume with ``func`` (e.g. block means).

    :func:`skimage.measure.block_reduce`, with the volume edge-padded to a whole
    number of blocks (skimage pads with a constant, which would darken the last
    blocks of a mean). Crop ``data`` first to drop partial blocks instead.

    Parameters
    ----------
    data : (X, Y, Z) array
        The volume.
    factors : sequence of 3 int
        Block size along each voxel axis (1 keeps the axis).
    func : callable
        Reduction taking an ``axis`` tuple, e.g. ``np.mean`` or ``np.all``.
    **func_kwargs
        Passed to ``func`` (e.g. ``dtype=np.float32`` for ``np.mean``).

    Returns
    -------
    (ceil(X / fx), ceil(Y / fy), ceil(Z / fz)) array
        One value per block; block ``(a, b, c)`` covers voxels
        ``a * fx .. a * fx + fx - 1`` (and so on), its centre at voxel
        ``a * fx + (fx - 1) / 2``.

    Examples
    --------
    >>> block_reduce(np.arange(8.0).reshape(2, 2, 2), (2, 1, 1)).tolist()
    [[[2.0, 3.0], [4.0, 5.0]]]
    """
    from skimage.measure import block_reduce as _skimage_block_reduce

    factors = tuple(int(f) for f in factors)
    pads = [(0, (-n) % f) for n, f in zip(data.shape, factors, strict=True)]
    if any(p[1] for p in pads):
        data = np.pad(data, pads, mode="edge")
    return _skimage_block_reduce(data, factors, func=func, func_kwargs=func_kwargs or None)


def same_grid(a: nib.spatialimages.SpatialImage, b: nib.spatialimages.SpatialImage) -> bool:
    """True when two images share shape (first 3 axes) and affine to 1e-4 mm."""
    return tuple(a.shape[:3]) == tuple(b.shape[:3]) and np.allclose(a.affine, b.affine, atol=1e-4)


def resample_to_img(
    source: ImageLike,
    target: ImageLike,
    *,
    interpolation: Literal["nearest", "linear"],
    source_name: str = "source image",
    target_name: str = "target image",
) -> nib.Nifti1Image:
    """Resample ``source`` onto the voxel grid of ``target`` (explicit, never silent).

    :func:`nibabel.processing.resample_from_to` in float64, plus tmsplan's
    checks: the interpolation must be named, and a source that lands wholly
    outside the target's field of view is refused. Both images must already
    live in the same world frame; this only changes the voxel grid.

    Parameters
    ----------
    source, target : str, os.PathLike or nibabel image
    interpolation : {"nearest", "linear"}
        ``"nearest"`` for masks and label images, ``"linear"`` for maps.

    Returns
    -------
    nibabel.Nifti1Image
        On the target grid; voxels outside the source's field of view are 0.

    Raises
    ------
    SpaceError
        When the two images do not overlap at all in world space.
    """
    from nibabel.processing import resample_from_to

    if interpolation not in ("nearest", "linear"):
        raise ValueError(f"interpolation must be 'nearest' or 'linear', got {interpolation!r}")
    src = check_img(source, name=source_name, require_signal=False)
    tgt = check_img(target, name=target_name, require_signal=False)
    if same_grid(src, tgt):
        return src
    floating = nib.Nifti1Image(np.asarray(src.dataobj, dtype=np.float64), src.affine)
    resampled = resample_from_to(
        floating,
        (tuple(tgt.shape[:3]), tgt.affine),
        order=0 if interpolation == "nearest" else 1,
        mode="constant",
        cval=0.0,
    )
    data = np.asarray(resampled.dataobj)
    if np.any(src.get_fdata()) and not np.any(data):
        raise SpaceError(
            f"{source_name} and {target_name} do not overlap in world space: they are "
            "probably in different spaces (e.g. MNI vs subject); bring them into one "
            "space first."
        )
    return img_on_grid(data, tgt)


def img_on_grid(
    data: np.ndarray, ref: nib.spatialimages.SpatialImage, *, default_code: int = 1
) -> nib.Nifti1Image:
    """A new NIfTI image of ``data`` on ``ref``'s grid, with ``ref``'s qform/sform codes.

    Parameters
    ----------
    data : (X, Y, Z) array
        Voxel values, shaped like ``ref``'s first three axes.
    ref : nibabel image
        The image whose affine and frame codes the new one carries.
    default_code : int
        Code written where ``ref`` has none (1 scanner, 4 MNI).

    Returns
    -------
    nibabel.Nifti1Image
        ``data`` with ``ref.affine`` as both qform and sform.
    """
    affine = np.asarray(ref.affine, dtype=np.float64)
    out = nib.Nifti1Image(data, affine)
    out.set_qform(affine, code=int(ref.header["qform_code"]) or default_code)
    out.set_sform(affine, code=int(ref.header["sform_code"]) or default_code)
    return out
