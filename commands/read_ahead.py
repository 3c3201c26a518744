"""What a batch reads before running a command's handler, so that its first run finds what it loads.

A batch reads in rounds (commands/batch.py): a handler runs until it asks for an aggregate nobody has read yet.
Opening a case loads its definition, then the newest event of the definition's number sequence: three runs of the
policy and the handler per command, two of them cut short. Read ahead, both are in the batch's first query and
the handler runs once. Reading ahead never changes an outcome: a command that reads something else still waits
for its round.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from uuid import UUID

from commands import messages as m
from domain.definition import definition_id
from domain.numbering import sequence_id

# (histories to read, aggregates whose newest event alone is read) for a command of some tenant
ReadAhead = Callable[[m.Command, str], tuple[tuple[UUID, ...], tuple[UUID, ...]]]


@functools.lru_cache(maxsize=4096)
def _opening(tenant: str, definition_key: str) -> tuple[tuple[UUID, ...], tuple[UUID, ...]]:
    return (definition_id(tenant, definition_key),), (sequence_id(tenant, definition_key),)


def _open_case(command: m.Command, tenant: str) -> tuple[tuple[UUID, ...], tuple[UUID, ...]]:
    assert isinstance(command, m.OpenCase)
    return _opening(tenant, command.definition_key)


READ_AHEAD: dict[type[m.Command], ReadAhead] = {m.OpenCase: _open_case}


def reads_of(command: m.Command, tenant: str) -> tuple[tuple[UUID, ...], tuple[UUID, ...]]:
    """What the command's handler will load first: (histories, newest events only); ((), ()) when not known."""
    ahead = READ_AHEAD.get(type(command))
    return ahead(command, tenant) if ahead is not None else ((), ())
