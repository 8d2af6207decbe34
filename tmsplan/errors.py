"""Errors raised by tmsplan.

Design notes: ``docs/README.md``, section ``tmsplan.errors``.
"""

from __future__ import annotations

__all__ = [
    "TmsplanError",
    "ImageError",
    "SpaceError",
    "RoiError",
    "ActivationError",
    "EmptyIntersectionError",
    "HeadSurfaceError",
    "UnreachableTargetError",
    "PoseError",
    "FormatError",
    "OutputExistsError",
    "OutputError",
    "RegistrationError",
    "RecordError",
    "RenderError",
    "TmsplanWarning",
    "PlanWarning",
    "CoilError",
    "ConnectivityError",
]


class TmsplanError(Exception):
    """Base class of every error tmsplan raises on purpose."""


class ImageError(TmsplanError, ValueError):
    """An image argument is missing, unreadable, of the wrong kind or invalid."""


class SpaceError(TmsplanError, ValueError):
    """Points, poses, images or transforms do not share the frame they must."""


class RoiError(TmsplanError, KeyError):
    """An ROI id is unknown or an ROI definition is invalid."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ActivationError(TmsplanError, ValueError):
    """An activation map or its threshold cannot give a target."""


class EmptyIntersectionError(ActivationError):
    """No supra-threshold voxel of the activation map lies inside the ROI."""


class HeadSurfaceError(TmsplanError, ValueError):
    """No usable scalp surface could be extracted from the head image."""


class UnreachableTargetError(TmsplanError, ValueError):
    """A target cannot be stimulated from the scalp (too deep, or no scalp above it)."""


class PoseError(TmsplanError, ValueError):
    """A coil pose is not a rigid transform (not orthonormal, reflected, or not finite)."""


class FormatError(TmsplanError, ValueError):
    """A file is not in the format it claims or that was asked for."""


class OutputExistsError(TmsplanError, FileExistsError):
    """An output already exists and overwriting was not allowed."""


class OutputError(TmsplanError, OSError):
    """An output cannot be created where it was asked for (no such folder, no permission)."""

    def __str__(self) -> str:  # OSError would otherwise format (errno, strerror) pairs
        return str(self.args[0]) if self.args else ""


class RegistrationError(TmsplanError, RuntimeError):
    """A transform is of the wrong kind or direction, or a registration failed."""


class RecordError(TmsplanError, ValueError):
    """A plan record (target.json) is invalid, of another schema, or inconsistent."""


class RenderError(TmsplanError, RuntimeError):
    """A picture could not be made completely (a layer of the scene was not drawn)."""


class TmsplanWarning(UserWarning):
    """Something the user must know, though planning could go on (the CLI prints it)."""


class PlanWarning(TmsplanWarning):
    """A warning about a plan: also in its record's ``warnings`` list (see ``plan_target``)."""


class CoilError(TmsplanError, KeyError):
    """Unknown coil id, or an invalid coil catalogue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConnectivityError(TmsplanError, ValueError):
    """Invalid resting-state input for the connectivity strategy."""
