"""``python -m stillroom``: the ``stillroom`` command."""

from .cli import main

main()
