"""Progress lines on stderr: shown once by the command, even beside a library that configured
the root logger; still passed to a caller's own logging inside the caller's process."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stderr


# mlflow.pytorch's Lightning autolog calls logging.basicConfig on import: a root handler on stderr
_SETUP = "import logging; logging.basicConfig(format='ROOT %(message)s'); from stillroom import progress; "
_LOG = "progress.show_on_stderr(); progress.logger.info('teacher: logging to MLflow: done'); "


def test_the_command_shows_each_progress_line_once_when_a_library_set_up_the_root_logger() -> None:
    err = _run(_SETUP + "progress.own_stderr(); " + _LOG)  # what stillroom.cli.main does first
    assert err.count("teacher: logging to MLflow: done") == 1 and "ROOT" not in err


def test_inside_a_callers_process_the_callers_logging_still_receives_the_lines() -> None:
    err = _run(_SETUP + _LOG)
    assert "ROOT teacher: logging to MLflow: done" in err  # the caller's root handler got it too
