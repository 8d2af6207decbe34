import nibabel as nib
import numpy as np
import pytest

from tmsplan.errors import ImageError, OutputExistsError
from tmsplan.render._vtk import is_blank, read_png
from tmsplan.render.slices import render_slices, slices_png


def _flipped_copy(img, axes):
    """Same phantom stored with the given voxel axes reversed (LAS: (0,), LPS: (0, 1))."""
    data = np.asarray(img.dataobj)
    affine = img.affine.copy()
    for axis in axes:
        data = np.flip(data, axis=axis)
        affine[axis, 3] = img.affine[axis, 3] + img.affine[axis, axis] * (data.shape[axis] - 1)
        affine[:3, axis] *= -1
    return nib.Nifti1Image(np.ascontiguousarray(data), affine)


def _lime_pixels(image):
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (g > 200) & (r < 80) & (b < 80)


def test_slices_picture_is_not_blank_and_marks_the_target(render_images, render_record):
    t1, activation, roi = render_images
    target = render_record["targets"][0]["cortical_mm"]
    data = slices_png(t1, target, activation_img=activation, activation_threshold=3.1, roi_img=roi)
    image = read_png(data)
    assert image.shape == (360, 1000, 3)
    assert not is_blank(image)
    assert _lime_pixels(image).sum() > 30  # the green target marker
    cyan = (image[..., 0] < 60) & (image[..., 1] > 180) & (image[..., 2] > 180)
    assert cyan.sum() > 30  # the ROI outline


@pytest.mark.parametrize("axes", [(0,), (0, 1)], ids=["LAS", "LPS"])
def test_slices_are_the_same_for_ras_las_lps_copies(render_images, render_record, axes):
    t1, activation, roi = render_images
    target = render_record["targets"][0]["cortical_mm"]
    reference = read_png(slices_png(t1, target, roi_img=roi)).astype(float)
    other = read_png(
        slices_png(_flipped_copy(t1, axes), target, roi_img=_flipped_copy(roi, axes))
    ).astype(float)
    assert np.abs(other - reference).mean() < 1.0


def _eye_sides(image):
    """Side (+1 right, -1 left) of each big white blob relative to the nearest target marker."""
    from scipy import ndimage

    markers, n_markers = ndimage.label(_lime_pixels(image))
    marker_cols = [
        c for _, c in ndimage.center_of_mass(markers > 0, markers, range(1, n_markers + 1))
    ]
    blobs, n_blobs = ndimage.label(image.min(axis=-1) > 240)
    sides = []
    for i, box in enumerate(ndimage.find_objects(blobs), start=1):
        rows, cols = box[0].stop - box[0].start, box[1].stop - box[1].start
        # the eye is a ~20 px disc (the crosshair may cut it in two); skip letters,
        # crosshair lines and the colour bar
        if not (5 <= rows <= 40 and 8 <= cols <= 40) or box[1].start > 950:
            continue
        col = ndimage.center_of_mass(blobs == i)[1]
        nearest = min(marker_cols, key=lambda c: abs(c - col))
        sides.append(int(np.sign(col - nearest)))
    return sides


@pytest.mark.slow
def test_slices_of_an_asymmetric_head_put_the_left_on_the_left(render_images):
    t1, _, _ = render_images
    # the phantom's bright "eye" is on the right (x = +35, y = 70, z = -10); cut with the
    # target on the midline: the eye shows in the coronal and axial panels, right of the
    # target marker (nilearn: patient's left on the left), whatever the storage order
    for img in (t1, _flipped_copy(t1, (0,)), _flipped_copy(t1, (0, 1))):
        sides = _eye_sides(read_png(slices_png(img, (0.0, 70.0, -10.0))))
        assert len(sides) >= 2 and set(sides) == {1}
    mirrored = nib.Nifti1Image(np.asarray(t1.dataobj)[::-1].copy(), t1.affine)
    sides = _eye_sides(read_png(slices_png(mirrored, (0.0, 70.0, -10.0))))
    assert len(sides) >= 2 and set(sides) == {-1}


def test_render_slices_writes_atomically_and_refuses_overwrite(tmp_path, render_images):
    t1, _, _ = render_images
    out = render_slices(t1, (-40.0, 20.0, 40.0), tmp_path / "s.png")
    assert not is_blank(read_png(out.read_bytes()))
    with pytest.raises(OutputExistsError):
        render_slices(t1, (-40.0, 20.0, 40.0), tmp_path / "s.png")
    render_slices(t1, (-40.0, 20.0, 40.0), tmp_path / "s.png", overwrite=True)


def test_slices_reject_a_missing_t1(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        slices_png(tmp_path / "nope.nii.gz", (0.0, 0.0, 0.0))


def test_slices_leave_the_matplotlib_backend_and_pyplot_alone(tmp_path, render_images):
    import matplotlib
    import matplotlib.pyplot as plt

    t1, _, _ = render_images
    before = matplotlib.get_backend()
    plt.close("all")
    matplotlib.use("svg")  # a user's (non-Agg) choice must survive
    try:
        render_slices(t1, (-40.0, 20.0, 40.0), tmp_path / "s.png")
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == []  # no figure left open in pyplot
    finally:
        matplotlib.use(before)
    assert not is_blank(read_png((tmp_path / "s.png").read_bytes()))
