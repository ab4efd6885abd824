"""``python -m verticals.cli``: the same as the ``verticals`` console script."""

from verticals.cli import main

main()
