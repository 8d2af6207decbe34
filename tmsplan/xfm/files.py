"""Readers for MNI -> T1 transform files, one per kind, and kind detection.

Design notes: ``docs/transforms.md``, section ``tmsplan.xfm.files``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from tmsplan.errors import FormatError, RegistrationError
from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME
from tmsplan.xfm.warps import DisplacementField, Step, check_head_affine

__all__ = [
    "TransformKind",
    "TRANSFORM_KINDS",
    "detect_kind",
    "is_matrix_text",
    "read_affine",
    "read_itk",
    "read_fsl",
    "frame_from_name",
]

TransformKind = Literal["affine", "itk", "fsl"]
TRANSFORM_KINDS = ("affine", "itk", "fsl")
"""The file kinds :func:`tmsplan.xfm.transforms.load_mni_to_subject` reads."""

# ITK's "image" transforms and fMRIPrep's BIDS names (from-X_to-Y_mode-image)
_BIDS_XFM = re.compile(r"from-([A-Za-z0-9]+)_to-([A-Za-z0-9]+)")


def _read_text(path: Path, limit: int = 1 << 16) -> str | None:
    """First bytes of ``path`` decoded as text, or None for binary content."""
    with open(path, "rb") as handle:
        head = handle.read(limit)
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parse_matrix_text(text: str) -> np.ndarray | None:
    """A 4x4 (or 3x4) matrix of whitespace-separated numbers, else None."""
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            rows.append([float(v) for v in line.replace(",", " ").split()])
        except ValueError:
            return None
    if len(rows) == 3 and all(len(r) == 4 for r in rows):
        rows.append([0.0, 0.0, 0.0, 1.0])
    if len(rows) != 4 or any(len(r) != 4 for r in rows):
        return None
    return np.array(rows, dtype=np.float64)


def is_matrix_text(path: Path) -> bool:
    """True when ``path`` is a text file of a 4x4 (or 3x4) number matrix.

    Such a file may be an FSL FLIRT matrix or a plain RAS+ mm matrix whatever
    its extension (see :func:`tmsplan.xfm.check.choose_matrix_kind`).

    Parameters
    ----------
    path : pathlib.Path
        An existing file.

    Returns
    -------
    bool
    """
    if path.name.lower().endswith((".h5", ".nii", ".nii.gz")):
        return False
    text = _read_text(path)
    return text is not None and _parse_matrix_text(text) is not None


def detect_kind(path: Path) -> str:
    """Tell the kind of a transform file from its content and extension.

    Parameters
    ----------
    path : pathlib.Path
        An existing transform file.

    Returns
    -------
    {"affine", "itk", "fsl"}
        ``.h5``, an ``#Insight Transform File`` text or a binary ``.mat``: ``"itk"``;
        a text ``.mat`` of 4x4 numbers: ``"fsl"``; other 4x4 number text: ``"affine"``.

    Raises
    ------
    FormatError
        A NIfTI warp field alone, or a file of none of these kinds.
    """
    name = path.name.lower()
    if name.endswith(".h5"):
        return "itk"
    if name.endswith((".nii", ".nii.gz")):
        raise FormatError(
            f"'{path}' is a NIfTI image; a warp field alone is not supported. Give the "
            "composite .h5 (e.g. fMRIPrep's ..._from-MNI..._to-T1w_mode-image_xfm.h5)."
        )
    text = _read_text(path)
    if text is not None and text.lstrip().startswith("#Insight Transform File"):
        return "itk"
    if text is not None and _parse_matrix_text(text) is not None:
        return "fsl" if name.endswith(".mat") else "affine"
    if name.endswith(".mat") and text is None:
        return "itk"
    raise FormatError(
        f"'{path}' is not a transform tmsplan can read: expected a plain 4x4 matrix text "
        "file (kind='affine'), an ITK/ANTs transform (.txt, .tfm, binary .mat, .h5; "
        "kind='itk') or an FSL FLIRT .mat (kind='fsl')."
    )


def read_affine(path: Path) -> tuple[np.ndarray, ...]:
    """Read a plain matrix text file (``kind="affine"``).

    Parameters
    ----------
    path : pathlib.Path
        4 lines of 4 numbers (or 3, completed with ``0 0 0 1``): RAS+ mm,
        mapping MNI points to T1 points (``t1 = M @ [x, y, z, 1]``).

    Returns
    -------
    tuple of one (4, 4) float64 array
        The inverse matrix: the T1w -> MNI point step, RAS+ mm.

    Raises
    ------
    FormatError
        Not a 4x4 (or 3x4) number matrix, or not a proper affine.
    RegistrationError
        Mirrored or implausibly scaled (see :func:`tmsplan.xfm.warps.check_head_affine`).
    """
    text = _read_text(path)
    matrix = None if text is None else _parse_matrix_text(text)
    if matrix is None:
        hint = (
            " It looks like an ITK transform; use kind='itk'."
            if text is not None and text.lstrip().startswith("#Insight")
            else ""
        )
        raise FormatError(
            f"'{path}' is not a plain affine: expected 4 lines of 4 numbers (RAS+ mm, "
            f"MNI -> T1).{hint}"
        )
    check_head_affine(matrix, f"'{path}'")
    return (np.linalg.inv(matrix),)


_ITK_AFFINE_TYPES = ("AffineTransform_", "MatrixOffsetTransformBase_")


def read_itk(path: Path) -> tuple[Step, ...]:
    """Read an ITK/ANTs transform file (``kind="itk"``) as T1w -> MNI point steps.

    Parameters
    ----------
    path : pathlib.Path
        ``.txt``/``.tfm`` text with exactly one affine, a binary ``.mat``, or an
        ``.h5`` holding a composite (affines + displacement fields) or one affine,
        in ITK's image convention for an MNI -> T1w resampling (fixed = T1w,
        moving = MNI).

    Returns
    -------
    tuple of (4, 4) float64 arrays and DisplacementField
        T1w -> MNI point steps in RAS+ mm, in the order applied (ITK applies the
        last transform of a composite first).

    Raises
    ------
    FormatError
        Unreadable, not an ITK transform, an unsupported transform type, or empty.
    RegistrationError
        An affine that mirrors or is implausibly scaled.
    """
    from nitransforms.io import itk

    name = path.name.lower()
    try:
        if name.endswith(".h5"):
            xforms = _read_itk_h5(path)
        elif name.endswith(".mat"):
            if _read_text(path) is not None:
                raise FormatError(
                    f"'{path}' is a text .mat (FSL FLIRT style), not an ITK binary .mat; "
                    "use kind='fsl' with reference= and moving= images."
                )
            xforms = [itk.ITKLinearTransform.from_filename(path)]
        else:
            text = _read_text(path) or ""
            if not text.lstrip().startswith("#Insight Transform File"):
                raise FormatError(
                    f"'{path}' is not an ITK transform text file (no '#Insight Transform "
                    "File' banner)."
                )
            types = re.findall(r"^\s*Transform:\s*(\S+)", text, flags=re.MULTILINE)
            bad = [t for t in types if not t.startswith(_ITK_AFFINE_TYPES)]
            if bad or len(types) != 1:
                raise FormatError(
                    f"'{path}' holds {len(types)} transform(s) of type(s) {types}; tmsplan "
                    "reads exactly one AffineTransform or MatrixOffsetTransformBase from "
                    "ITK text files (convert others with ANTs' ConvertTransformFile)."
                )
            xforms = [itk.ITKLinearTransform.from_filename(path)]
    except FormatError:
        raise
    except (OSError, KeyError, ValueError, IndexError, NotImplementedError) as exc:
        raise FormatError(
            f"'{path}' cannot be read as an ITK/ANTs transform ({type(exc).__name__}: "
            f"{str(exc)[:120]}); check the file and kind."
        ) from None
    steps: list[Step] = []
    for xfm in reversed(xforms):  # ITK applies the last transform of a composite first
        if isinstance(xfm, nib.Nifti1Image):
            steps.append(DisplacementField(np.asarray(xfm.dataobj), xfm.affine))
        else:
            ras = np.asarray(xfm.to_ras(), dtype=np.float64)
            if ras.shape != (4, 4) or not np.all(np.isfinite(ras)):
                raise FormatError(f"'{path}': the affine parameters are not finite.")
            check_head_affine(np.linalg.inv(ras), f"'{path}'")
            steps.append(ras)
    if not steps:
        raise FormatError(f"'{path}' contains no transform.")
    return tuple(steps)


def _read_itk_h5(path: Path) -> list:
    import h5py
    from nibabel.affines import from_matvec
    from nitransforms.io import itk

    with h5py.File(path, "r") as handle:
        group = handle["TransformGroup"]
        first = group["0"]["TransformType"][0]
        first = first.decode() if isinstance(first, bytes) else str(first)
    if first.startswith("CompositeTransform"):
        return list(itk.ITKCompositeH5.from_filename(path))
    if first.startswith(_ITK_AFFINE_TYPES):  # a single affine saved as .h5
        with h5py.File(path, "r") as handle:
            node = handle["TransformGroup"]["0"]
            key = "TransformParameters" if "TransformParameters" in node else "TranformParameters"
            params = np.asarray(node[key], dtype=np.float64)
            fixed = np.asarray(node[key.replace("Parameters", "FixedParameters")])
        return [
            itk.ITKLinearTransform(
                parameters=from_matvec(params[:9].reshape(3, 3), params[9:12]), offset=fixed
            )
        ]
    raise FormatError(
        f"'{path}': unsupported ITK transform type {first!r}; expected a composite "
        "(affine + displacement field) or an affine."
    )


def read_fsl(path: Path, reference: nib.Nifti1Image, moving: nib.Nifti1Image) -> tuple:
    """Read an FSL FLIRT matrix (``kind="fsl"``) as a T1w -> MNI point step.

    Parameters
    ----------
    path : pathlib.Path
        Text matrix from ``flirt -in <MNI> -ref <T1> -omat``, in FSL's
        scaled-voxel coordinates of the two images.
    reference : nibabel.Nifti1Image
        The T1 used as ``-ref`` (checked image).
    moving : nibabel.Nifti1Image
        The MNI image used as ``-in`` (checked image).

    Returns
    -------
    tuple of one (4, 4) float64 array
        The T1w -> MNI point step, RAS+ mm.

    Raises
    ------
    FormatError
        Not a 4x4 text matrix, or not readable as an FSL matrix.
    RegistrationError
        Mirrored or implausibly scaled.
    """
    from nitransforms.io import fsl

    text = _read_text(path)
    if text is None or _parse_matrix_text(text) is None:
        raise FormatError(
            f"'{path}' is not an FSL FLIRT matrix: expected 4 lines of 4 numbers"
            + (" (it is binary; an ITK .mat? use kind='itk')." if text is None else ".")
        )
    try:
        xfm = fsl.FSLLinearTransform.from_filename(path)
        # nitransforms returns the reference -> moving (T1w -> MNI) point mapping
        ras = np.asarray(xfm.to_ras(moving=moving, reference=reference), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise FormatError(f"'{path}' cannot be read as an FSL matrix ({exc}).") from None
    check_head_affine(np.linalg.inv(ras), f"'{path}'")
    return (ras,)


def frame_from_name(path: Path, src_frame: str | None) -> str:
    """MNI frame of a transform file, from its BIDS-style name when it has one.

    Parameters
    ----------
    path : pathlib.Path
        Transform file; only its name is read (``from-<src>_to-<dst>``).
    src_frame : str or None
        Frame asked for by the caller; None to accept what the name says.

    Returns
    -------
    str
        ``<src>`` from the name, else ``src_frame``, else ``"MNI152NLin6Asym"``.

    Raises
    ------
    RegistrationError
        The name says T1w -> another space, a mapping not into T1w, or a source
        frame other than ``src_frame``.
    """
    found = _BIDS_XFM.search(path.name)
    if found is None:
        return src_frame or MNI_FRAME
    src, dst = found.groups()
    if src == SUBJECT_FRAME and dst != SUBJECT_FRAME:
        raise RegistrationError(
            f"'{path.name}' maps {SUBJECT_FRAME} -> {dst} (from-{src}_to-{dst}), the opposite "
            f"of what is needed; pass the inverse file, from-{dst}_to-{SUBJECT_FRAME} "
            "(fMRIPrep writes both)."
        )
    if dst != SUBJECT_FRAME:
        raise RegistrationError(
            f"'{path.name}' maps {src} -> {dst}, not into the T1 ({SUBJECT_FRAME}); pass the "
            f"from-<MNI template>_to-{SUBJECT_FRAME} transform."
        )
    if src_frame is not None and src_frame != src:
        raise RegistrationError(
            f"src_frame={src_frame!r} but the file name says the transform starts in {src!r} "
            f"('{path.name}'); pass src_frame={src!r} and use ROIs/maps in that template."
        )
    return src
