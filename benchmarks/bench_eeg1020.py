"""Benchmark: 10-10 positions on a patient head (incl. landmark carrying); sphere dose.

Run: PYTHONPATH=. python benchmarks/bench_eeg1020.py
The patient is the MNI head moved by a known affine onto an LPS-stored 1 mm grid; its
scalp surface is made once (not timed: the plan has it already).
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _phantoms import rigid_scaling, synthetic_patient  # noqa: E402

from tmsplan.clinic.dose import sphere_dose  # noqa: E402
from tmsplan.clinic.eeg1020 import head_positions  # noqa: E402
from tmsplan.head.scalp import scalp_surface  # noqa: E402
from tmsplan.io.bundled import load_mni_head  # noqa: E402
from tmsplan.xfm.transforms import MniToSubject  # noqa: E402


def main() -> None:
    matrix = rigid_scaling()
    patient = synthetic_patient(load_mni_head(1), matrix, order="LPS", voxel_mm=1.0)
    scalp = scalp_surface(patient, frame="T1w")
    xfm = MniToSubject.from_matrix(matrix)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        positions = head_positions(scalp, mni_to_subject=xfm, system="10-10")
        times.append(time.perf_counter() - start)
    print(
        f"10-10 positions ({len(positions.names)}) on a {len(scalp.mesh.faces)}-face patient "
        f"scalp incl. landmark carrying: median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f} s; budget 3 s)"
    )
    times = []
    for _ in range(20):
        start = time.perf_counter()
        sphere_dose(55, 22, 18)
        times.append(time.perf_counter() - start)
    print(f"sphere dose: median {statistics.median(times) * 1000:.1f} ms (budget 200 ms)")


if __name__ == "__main__":
    main()
