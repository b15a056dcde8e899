"""stillroom-fraud: heavy tabular fraud teachers distilled into fast LightGBM students."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stillroom-fraud")  # the one version source: pyproject.toml
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "unknown"
