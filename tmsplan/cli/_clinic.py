"""Runners for clinics without neuronavigation: ``eeg1020``, ``beam-f3``, ``dose``."""

from __future__ import annotations

import argparse

from tmsplan.errors import TmsplanError


def run_eeg1020(args: argparse.Namespace) -> int:
    from tmsplan.clinic.eeg1020 import head_positions, write_positions
    from tmsplan.head.scalp import scalp_surface
    from tmsplan.io.images import check_img
    from tmsplan.io.outputs import check_writable
    from tmsplan.spaces import MNI_FRAME, SUBJECT_FRAME

    check_writable(args.out, overwrite=args.force)
    check_writable(args.out.with_suffix(".json"), overwrite=args.force)
    if args.t1 is None and (args.mni_to_t1 or args.register):
        raise TmsplanError("--mni-to-t1/--register need the patient's T1 (--t1).")
    xfm = None
    if args.t1 is None:
        from tmsplan.io.bundled import mni_head_path

        head, frame = mni_head_path(1), MNI_FRAME
    else:
        head, frame = args.t1, SUBJECT_FRAME
    t1_img = check_img(head, name="--t1")
    if args.mni_to_t1 is not None:
        from tmsplan.io.bundled import mni_head_path
        from tmsplan.xfm.transforms import load_mni_to_subject

        xfm = load_mni_to_subject(args.mni_to_t1, reference=t1_img, moving=mni_head_path(1))
    elif args.register:
        from tmsplan.xfm.registration import register_mni_to_t1

        xfm = register_mni_to_t1(t1_img, kind=args.register).mni_to_subject
    scalp = scalp_surface(t1_img, frame=frame, name="--t1")
    positions = head_positions(
        scalp, mni_to_subject=xfm, landmarks=args.landmarks, system=args.system
    )
    tsv, sidecar = write_positions(positions, args.out, overwrite=args.force)
    tape = positions.tape_mm
    print(
        f"{len(positions.names)} {positions.system} positions ({positions.frame}, RAS+ mm) "
        f"written to {tsv} and {sidecar}; landmarks {positions.landmarks.source}"
    )
    print(
        f"  on the scalp: nasion-inion {tape['nasion_inion'] / 10:.1f} cm, tragus-tragus "
        f"{tape['tragus_tragus'] / 10:.1f} cm, circumference {tape['circumference'] / 10:.1f} cm"
    )
    for note in positions.notes:
        print(f"  warning: {note}")
    return 0


def run_beam_f3(args: argparse.Namespace) -> int:
    import json

    from tmsplan.clinic.beamf3 import beam_f3

    result = beam_f3(args.nasion_inion, args.tragus_tragus, args.circumference)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Beam F3 (left DLPFC): X = {result['x_cm']:.1f} cm, Y = {result['y_cm']:.1f} cm")
    print(
        f"  X: from the midline (Fpz) along the circumference to the LEFT; Y: from the vertex "
        f"(Cz) toward that point. {result['how']}"
    )
    print(f"  source: {result['source']}")
    return 0


def run_dose(args: argparse.Namespace) -> int:
    import json

    from tmsplan.clinic.dose import dose

    result = dose(
        args.motor_threshold,
        args.target_depth,
        args.motor_depth,
        method=args.method,
        variant="stokes2007" if args.k == "2.8" else "stokes2005",
        target_radius_mm=args.head_radius,
        motor_radius_mm=args.head_radius,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    status = "" if result["achievable"] else "  NOT ACHIEVABLE (above 100 %MSO)"
    print(f"adjusted intensity: {result['adjusted_percent_mso']:.1f} %MSO{status}")
    print(f"  {result['method']}: {result['formula']}")
    print(f"  source: {result['source']}")
    for caveat in result["caveats"]:
        print(f"  caveat: {caveat}")
    return 0
