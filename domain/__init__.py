"""casestream domain: aggregates, their past-tense events, and the errors they raise."""
