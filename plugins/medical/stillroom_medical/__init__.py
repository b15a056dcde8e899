"""stillroom-medical: medical-imaging CNN teachers distilled into CPU-sized students."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stillroom-medical")  # the one version source: pyproject.toml
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "unknown"
