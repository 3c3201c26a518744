"""casestream: api."""
