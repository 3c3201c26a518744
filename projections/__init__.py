"""casestream: projections."""
