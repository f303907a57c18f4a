"""petbind: a BIDS-App for PET receptor imaging (BPND maps and group statistics)."""

# the one place the version is written (pyproject.toml reads it from here): a literal, so
# that starting a command needs no importlib.metadata (docs/validation.md: speed)
__version__ = "0.2.0"
