"""Per-molecule RDKit work spread over worker processes, in chunks, with a progress bar.

Standardising and scaffolding a molecule are pure functions of its SMILES, some tens to
hundreds of microseconds of RDKit each, and RDKit holds the GIL: a 41k-molecule file loads
on one core in minutes on a busy machine. Above ``PARALLEL_MIN_ITEMS`` the list is cut into
chunks that worker processes (one per usable core) map; the order of the results is the
order of the input whatever order the chunks finish in. A progress bar shows on a terminal
(the ``stillroom`` console), and the step's time goes to the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stillroom.contract import console, usable_cores

T = TypeVar("T")
PARALLEL_MIN_ITEMS = 5_000  # below this, starting workers (importing RDKit) costs more than it saves
CHUNK = 2_000


def chunked_map(block: Callable[[list[Any]], list[T]], items: Sequence[Any], title: str, jobs: int = 0) -> list[T]:
    """``block`` applied to chunks of ``items`` in worker processes; the results in input order.

    ``block`` must be a module-level function (it is sent to the workers by name) mapping a
    list to a list of the same length. ``jobs``: worker processes (0: the usable cores)."""
    items = list(items)
    jobs = jobs or usable_cores()
    started = time.perf_counter()
    if jobs <= 1 or len(items) < PARALLEL_MIN_ITEMS:
        return block(items)
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    parts: list[list[T]] = [[] for _ in chunks]
    with _bar() as bar, ProcessPoolExecutor(max_workers=jobs) as pool:
        task = bar.add_task(title, total=len(items))
        pending = {pool.submit(block, chunk): i for i, chunk in enumerate(chunks)}
        for future in as_completed(pending):
            i = pending[future]
            parts[i] = future.result()
            bar.advance(task, len(chunks[i]))
    console.log(f"{title}: {len(items):,} in {time.perf_counter() - started:.1f}s on {jobs} processes")
    return [x for part in parts for x in part]


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=console.quiet,
    )
