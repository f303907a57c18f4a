"""Temporary files of third-party tools kept in the node's own folder.

antspyx writes Atropos's probability images to the system's temporary folder and never deletes
them (on a cluster node that fills /tmp scan after scan), and ROBEX writes a copy of the T1w
there (too big for the 64 MB /tmp of ``apptainer --containall``). Within
:func:`temporary_files_in`, everything such tools make with :mod:`tempfile` goes to a private
folder inside the node's working folder instead, removed when the block ends."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def without_whitespace(folder: str | Path) -> Path:
    """``folder``, or else its nearest ancestor whose path has no whitespace and can be written,
    or else the system's temporary folder: a place for tools that split their arguments at
    spaces (ROBEX's runROBEX.sh), so that a dataset in "PET data/" works."""
    folder = Path(folder).resolve()
    for candidate in (folder, *folder.parents):
        if not any(c.isspace() for c in str(candidate)) and os.access(candidate, os.W_OK):
            return candidate
    return Path(tempfile.gettempdir())


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
