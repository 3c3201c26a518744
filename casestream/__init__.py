"""casestream: casestream."""
