"""Every read model the platform maintains."""

from __future__ import annotations

from projections.audit import AUDIT
from projections.base import Projection
from projections.cases import CASES
from projections.reference import DEFINITIONS, QUEUES, RECORD_TYPES, RECORDS
from projections.tasks import TASKS
from projections.timeline import TIMELINE

ALL: tuple[Projection, ...] = (CASES, TIMELINE, DEFINITIONS, QUEUES, RECORD_TYPES, RECORDS, TASKS, AUDIT)
