"""`python -m eksir` runs the CLI, for environments where the console script is not on PATH."""

from eksir.cli.app import main

main()
