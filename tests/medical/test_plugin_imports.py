"""Installing the medical vertical must not make every other command pay for torch."""

from __future__ import annotations

import subprocess
import sys


def test_loading_every_vertical_does_not_import_torch() -> None:
    # `stillroom score` for a fraud model loads all installed verticals' hooks; torch (1.5 s to
    # import) is only for building a medical model
    code = (
        "import sys\n"
        "from stillroom.api import get_plugin_manager\n"
        "pm = get_plugin_manager()\n"
        "assert 'medical' in pm.registry.names('task'), 'medical vertical not loaded'\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
