"""Case numbers: a gap-free counter per tenant and definition, never random.

The counter is an aggregate whose version is the last number issued. It is saved in the same
transaction as the CaseOpened event, so two concurrent openings cannot take the same number: one of
them hits the version conflict and is retried.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE
from domain.events import Context, Event


@lru_cache(maxsize=4096)
def sequence_id(tenant: str, definition_key: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"case-numbers:{tenant}:{definition_key}")


class CaseNumberIssued(Event):
    """Number `number` of a definition's sequence went to case `case_id`."""

    number: int
    case_id: str


class CaseNumberSequence(Aggregate):
    """The last case number issued for one (tenant, definition)."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.last = 0

    def issue(self, ctx: Context, case_id: UUID) -> int:
        event = self.record(ctx, CaseNumberIssued, number=self.last + 1, case_id=str(case_id))
        return event.number

    @applies(CaseNumberIssued)
    def _issued(self, e: CaseNumberIssued) -> None:
        self.last = e.number
