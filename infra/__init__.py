"""casestream: infra."""
