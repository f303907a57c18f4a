"""petbind: a BIDS-App for PET receptor imaging (BPND maps and group statistics)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("petbind")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
