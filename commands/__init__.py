"""casestream: commands."""
