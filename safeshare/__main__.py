"""``python -m safeshare``: the same CLI as the ``safeshare`` command."""

from safeshare.cli import main

main()
