"""`python -m casestream` runs the CLI."""

from casestream.cli import main

main()
