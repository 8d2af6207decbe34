"""Pictures and the HTML report of a plan (the only package that uses pyvista).

pyvista/VTK are imported only when a picture is made, offscreen through EGL.
"""

from tmsplan.render.camera import VIEWS, project_to_screen, set_view
from tmsplan.render.checks import scene_geometry
from tmsplan.render.group import group_plotter, render_group
from tmsplan.render.html import scene_html
from tmsplan.render.meshes import coil_meshes, isosurface_from_img
from tmsplan.render.report import (
    MAX_REPORT_BYTES,
    REPORT_FILENAME,
    check_record_t1,
    handle_angle,
    make_report,
    write_report,
)
from tmsplan.render.scene import (
    NoDisplayError,
    display_available,
    plan_plotter,
    render_view_images,
    render_views,
    view,
)
from tmsplan.render.slices import render_slices, slices_png

__all__ = [
    "MAX_REPORT_BYTES",
    "REPORT_FILENAME",
    "VIEWS",
    "NoDisplayError",
    "check_record_t1",
    "display_available",
    "coil_meshes",
    "group_plotter",
    "handle_angle",
    "isosurface_from_img",
    "make_report",
    "plan_plotter",
    "project_to_screen",
    "render_group",
    "render_slices",
    "render_view_images",
    "render_views",
    "scene_geometry",
    "scene_html",
    "set_view",
    "slices_png",
    "view",
    "write_report",
]
