"""`python -m tps19.cli`: the same as the `tps19` console script."""

from . import main

main()
