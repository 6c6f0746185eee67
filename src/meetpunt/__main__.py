"""``python -m meetpunt``: the same as the ``meetpunt`` command."""

from meetpunt.cli import main

main()
