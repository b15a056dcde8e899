"""Progress lines on stderr: shown once, even beside a library that configured the root logger."""

from __future__ import annotations

import logging
import sys

import pytest

from stillroom.progress import logger, show_on_stderr, stop_showing


def test_each_progress_line_is_shown_once_when_a_library_set_up_the_root_logger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # mlflow.pytorch's Lightning autolog calls logging.basicConfig on import: a root handler
    root_handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(root_handler)
    handler = show_on_stderr()
    try:
        logger.info("teacher: logging to MLflow: done")
    finally:
        stop_showing(handler)
        logging.getLogger().removeHandler(root_handler)
    assert capsys.readouterr().err.count("teacher: logging to MLflow: done") == 1
    assert logger.propagate  # given back: a caller's own logging sees stillroom's records again
    assert handler not in logger.handlers
