"""casestream: adapters."""
