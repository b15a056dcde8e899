"""Shared fixtures. The ``stillroom.testing`` pytest plugin (tracking_store, register_plugin)
is loaded through its pytest11 entry point, as it would be for a plugin author."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
