"""Participant-level time per scan, and the simulator's time for its default dataset.

    python benchmarks/participant.py

Simulates one participant (2 mm PET, 16 frames, 1 mm T1w) and times `petbind participant` on it
with 2 processes, printing the wall time, the slowest steps (from nipype's node runtimes) and the
ratio to the 5-minute target; then the extra cost of voxelwise partial-volume correction (RBV) on
the same work directory. Also times `petbind-simulate` on its default small dataset (target:
under a minute).
"""

from __future__ import annotations

import pickle
import gzip
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bids_app.cli.run import main as petbind_main  # noqa: E402
from bids_app.cli.simulate import main as simulate_main  # noqa: E402

TARGET_S = 300.0


def node_times(work: Path) -> list[tuple[float, str]]:
    out = []
    for result in work.rglob("result_*.pklz"):
        try:
            with gzip.open(result) as f:
                res = pickle.load(f)
            out.append((float(res.runtime.duration), result.parent.name))
        except Exception:  # noqa: BLE001 - a benchmark reads what it can
            continue
    return sorted(out, reverse=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        simulate_main([str(root / "default"), "-q"])
        sim_default = time.perf_counter() - t0
        simulate_main([str(root / "ds"), "--n-subjects", "1", "--groups", "a",
                       "--voxel-size", "2", "--t1-voxel-size", "1", "-q"])
        t0 = time.perf_counter()
        code = petbind_main([str(root / "ds"), str(root / "out"), "participant", "-w",
                             str(root / "work"), "--nprocs", "2", "-q"])
        elapsed = time.perf_counter() - t0
        print(f"petbind-simulate default dataset (4 participants): {sim_default:.0f} s "
              f"(target < 60 s; ratio {sim_default / 60:.2f})")
        print(f"petbind participant, 1 scan (2 mm PET, 16 frames; 1 mm T1w), 2 processes: "
              f"{elapsed:.0f} s, exit {code} (target <= {TARGET_S:.0f} s; ratio "
              f"{elapsed / TARGET_S:.2f})")
        print("slowest steps:")
        for seconds, name in node_times(root / "work")[:8]:
            print(f"  {seconds:7.1f} s  {name}")
        # voxelwise PVC on the same work dir: only its own steps run
        before = set((root / "work").rglob("result_*.pklz"))
        t0 = time.perf_counter()
        code = petbind_main([str(root / "ds"), str(root / "out_pvc"), "participant", "-w",
                             str(root / "work"), "--nprocs", "2", "-q", "--pvc-psf-fwhm", "2.5",
                             "--pvc-method", "rbv"])
        extra = time.perf_counter() - t0
        print(f"--pvc-psf-fwhm 2.5 --pvc-method rbv on top: {extra:.0f} s more, exit {code} "
              f"(ratio to the run without PVC {extra / elapsed:.2f}); its steps:")
        for path in sorted(set((root / "work").rglob("result_*.pklz")) - before):
            with gzip.open(path) as f:
                seconds = float(pickle.load(f).runtime.duration)
            if seconds > 1:
                print(f"  {seconds:7.1f} s  {path.parent.parent.name}/{path.parent.name}")


if __name__ == "__main__":
    main()
