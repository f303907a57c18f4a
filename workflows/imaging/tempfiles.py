"""Temporary files of third-party tools kept in the node's own folder.

antspyx writes Atropos's probability images to the system's temporary folder and never deletes
them (on a cluster node that fills /tmp scan after scan), and ROBEX writes a copy of the T1w
there (too big for the 64 MB /tmp of ``apptainer --containall``). Within
:func:`temporary_files_in`, everything such tools make with :mod:`tempfile` goes to a private
folder inside the node's working folder instead, removed when the block ends."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def temporary_files_in(folder: str | Path) -> Iterator[Path]:
    """Within the block, :mod:`tempfile` makes its files in a new folder inside ``folder``;
    that folder and whatever is left in it are deleted when the block ends."""
    private = Path(tempfile.mkdtemp(prefix="tmp-", dir=folder))
    previous = tempfile.tempdir
    tempfile.tempdir = str(private)
    try:
        yield private
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(private, ignore_errors=True)
