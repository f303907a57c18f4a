"""Small helpers to write BIDS files deterministically and atomically, and only where the run
may write: within :func:`writes_confined_to` the output (and work) folders, a write anywhere
else (a name from the data with ``..`` in it, a symbolic link out of the folder) is refused
with exit code 73."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import nibabel as nib
import numpy as np

from bids_app.errors import EX_CANTCREAT, EX_DATAERR, PetbindError

if TYPE_CHECKING:
    import pandas as pd

_WRITE_ROOTS: list[Path] = []


@contextmanager
def writes_confined_to(*folders: Path | str) -> Iterator[None]:
    """Within the block, this process writes only inside ``folders`` (resolved: links
    followed)."""
    previous = list(_WRITE_ROOTS)
    _WRITE_ROOTS[:] = [Path(f).resolve() for f in folders]
    try:
        yield
    finally:
        _WRITE_ROOTS[:] = previous


def check_write(path: Path | str) -> Path:
    """``path`` if the run may write it; PetbindError (73) if it lies outside the folders of
    :func:`writes_confined_to` once resolved."""
    path = Path(path)
    if _WRITE_ROOTS:
        resolved = path.resolve()
        if not any(resolved == root or root in resolved.parents for root in _WRITE_ROOTS):
            raise PetbindError(f"{path}: petbind writes only inside "
                               f"{', '.join(map(str, _WRITE_ROOTS))}; refusing to write "
                               "outside them (a name in the data, or a link?)", EX_CANTCREAT)
    return path


def copy_atomic(src: str | Path, dst: Path) -> None:
    """Copy a file to ``dst`` (created whole or not at all)."""
    check_write(dst).parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    check_write(path).parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, content: dict[str, Any]) -> None:
    _atomic_write_bytes(Path(path), (json.dumps(content, indent=2) + "\n").encode())


def read_json_object(path: Path, what: str = "file") -> dict:
    """A JSON file that must hold an object; broken JSON, text that is not UTF-8 or another
    JSON value is an error naming the file (exit 65)."""
    try:
        content = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PetbindError(f"{path}: not valid JSON ({err}); fix the {what}",
                           EX_DATAERR) from None
    if not isinstance(content, dict):
        raise PetbindError(f"{path}: must be a JSON object; fix the {what}", EX_DATAERR)
    return content


def read_text_tsv(path: Path, na_values: list[str] | None = None) -> "pd.DataFrame":
    """A TSV as text (each column is typed where it is used; ``na_values`` read as missing);
    an unreadable one is an error naming the file (exit 65)."""
    import pandas as pd

    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False,
                           na_values=na_values)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise PetbindError(f"{path}: not a readable TSV ({err}); fix the file",
                           EX_DATAERR) from None


def write_tsv(path: Path, table: pd.DataFrame) -> None:
    text = table.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.6g",
                        lineterminator="\n")
    _atomic_write_bytes(Path(path), text.encode())


def write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(Path(path), text.encode())


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray,
                dtype: type | None = np.float32, xyzt_units: tuple[str, str] = ("mm", "sec")
                ) -> None:
    """Write a NIfTI-1 image; gzip output is byte-identical for identical input (no mtime)."""
    path = check_write(path)
    img = nib.Nifti1Image(np.asarray(data, dtype=dtype) if dtype else data, affine)
    img.header.set_xyzt_units(*xyzt_units)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=".nii.gz" if path.name.endswith(".gz") else ".nii")
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def bids_validator_executable() -> str | None:
    """The bids-validator-deno command: on PATH, or beside this Python (a venv not activated)."""
    import shutil
    import sys

    found = shutil.which("bids-validator-deno")
    if found:
        return found
    beside = Path(sys.executable).parent / "bids-validator-deno"
    return str(beside) if beside.exists() else None
