"""casestream: processes."""
