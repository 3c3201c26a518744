"""casestream: ui."""
