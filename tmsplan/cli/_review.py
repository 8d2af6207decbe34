"""Runners over the atlas, the coil catalogue and saved plans (``target.json``).

``rois``, ``coils``, ``validate``, ``export``, ``report``, ``view``, ``group``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from tmsplan.errors import TmsplanError, TmsplanWarning


def run_rois(args: argparse.Namespace) -> int:
    from tmsplan.target.atlas import (
        format_reachability_table,
        format_roi_table,
        load_rois,
        reachability,
    )

    rois = list(load_rois())
    if args.drug:
        drugs = sorted({r.drug for r in rois})
        rois = [r for r in rois if r.drug == args.drug.strip().lower()]
        if not rois:
            raise TmsplanError(
                f"no ROI for --drug {args.drug!r}; the atlas has {', '.join(drugs)}."
            )
    if args.reachable_with:
        from tmsplan.coil.catalogue import get_coil

        coil = get_coil(args.reachable_with)
        reach = {row["id"]: row for row in reachability(rois)}
        rois = [r for r in rois if coil.id in reach[r.id]["reachable_with"]]
        if not rois:
            print(f"no ROI centre is within the {coil.reach_mm:g} mm reach of the {coil.name}.")
            return 0
    if args.reach or args.reachable_with:
        print(format_reachability_table(rois))
    else:
        print(format_roi_table(rois))
    return 0


def run_coils(args: argparse.Namespace) -> int:
    from tmsplan.coil.catalogue import format_coil_table, load_coils

    print(format_coil_table(load_coils()))
    return 0


def validated_record(path: Path) -> dict:
    """Read a target.json and re-check it; T1 checksum problems become warnings."""
    from tmsplan.io.record import RECORD_FILENAME, read_record
    from tmsplan.io.record_checks import validate_record

    record = read_record(path)
    source = str(path / RECORD_FILENAME if path.is_dir() else path)
    for text in validate_record(record, source=source, check_t1=True):
        warnings.warn(text, TmsplanWarning, stacklevel=2)
    return record


def run_validate(args: argparse.Namespace) -> int:
    record = validated_record(args.record)
    targets = record["targets"]
    reachable = sum(1 for t in targets if t["reachable"])
    print(
        f"{args.record}: OK, a consistent plan record (schema {record['schema_version']}, "
        f"frame {record['space']}, {len(targets)} target(s), {reachable} reachable)"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from tmsplan.export import export_record

    record = validated_record(args.record)
    written = export_record(record, args.format, args.out, space=args.space, overwrite=args.force)
    for path in written:
        print(path)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from tmsplan.render.review import report_record

    for path in report_record(args.record, out=args.out, overwrite=args.force):
        print(path)
    return 0


def run_view(args: argparse.Namespace) -> int:
    from tmsplan.render.review import view_record

    view_record(args.record)
    return 0


def run_group(args: argparse.Namespace) -> int:
    from tmsplan.render.review import group_picture

    print(group_picture(args.records, args.out, view=args.view, overwrite=args.force))
    return 0
