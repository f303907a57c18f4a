"""Compare two petbind output folders, for changes that must not change results.

    python benchmarks/compare_outputs.py OLD_OUT NEW_OUT

NIfTI images and TSV tables must be byte-identical; a JSON sidecar of the old output must keep
every key with the same value in the new one (new keys are listed, not errors; ``Sources``
paths may differ). Prints what differs and exits 1 when anything does. Reports (HTML) and the
run's logs are not compared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and not p.name.endswith((".html", ".png"))
            and "logs" not in p.relative_to(root).parts}


def compare(old: Path, new: Path) -> int:
    a, b = files(old), files(new)
    problems = [f"only in {old}: {name}" for name in sorted(a - b)]
    for name in sorted(a & b):
        if name.endswith((".nii.gz", ".nii", ".tsv")):
            if (old / name).read_bytes() != (new / name).read_bytes():
                problems.append(f"differs: {name}")
        elif name.endswith(".json"):
            before, after = (json.loads((root / name).read_text()) for root in (old, new))
            if isinstance(before, dict) and isinstance(after, dict):
                changed = [k for k in before if k != "Sources" and before[k] != after.get(k)]
                problems += [f"{name}: {k} was {before[k]!r}, is {after.get(k)!r}"
                             for k in changed]
                added = sorted(set(after) - set(before))
                if added:
                    print(f"{name}: new keys {', '.join(added)}")
    for line in problems:
        print(line)
    print(f"{len(a & b)} files compared, {len(b - a)} new, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(compare(Path(sys.argv[1]), Path(sys.argv[2])))
