"""casestream: domain."""
