"""`python -m cli` runs `skydeck`."""

from cli.main import main

main()
