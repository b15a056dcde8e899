"""stillroom-molecules: slow molecule models distilled into screening-speed fingerprint students."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stillroom-molecules")  # the one version source: pyproject.toml
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "unknown"
