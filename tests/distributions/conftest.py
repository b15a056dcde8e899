"""The third-party packages of this checkout's environment, for fresh environments that must not
see stillroom's own distributions (nor download anything)."""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest

OURS = re.compile(r"^(stillroom|__editable__|_stillroom)|\.pth$", re.IGNORECASE)


@pytest.fixture(scope="session")
def third_party(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Links to every installed package of this environment except stillroom's own."""
    links = tmp_path_factory.mktemp("third-party")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not OURS.search(entry.name):
            (links / entry.name).symlink_to(entry)
    return links
