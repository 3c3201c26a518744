"""Every read model the platform maintains, and the version of their shape."""

from __future__ import annotations

from projections.audit import AUDIT
from projections.base import Projection
from projections.cases import CASES
from projections.documents import DOCUMENTS
from projections.incidents import INCIDENTS
from projections.messages import MAIL_ASIDE, MESSAGES
from projections.process_instances import PROCESS_INSTANCES
from projections.process_versions import PROCESS_VERSIONS, PROCESSES
from projections.reference import DEFINITIONS, QUEUES, RECORD_TYPES, RECORDS
from projections.tasks import TASKS
from projections.timeline import TIMELINE

ALL: tuple[Projection, ...] = (CASES, TIMELINE, DEFINITIONS, QUEUES, RECORD_TYPES, RECORDS, TASKS, AUDIT, DOCUMENTS,
                                MESSAGES, MAIL_ASIDE, INCIDENTS, PROCESS_INSTANCES, PROCESSES, PROCESS_VERSIONS)

# The shape of the documents the folds write. Bump it whenever a fold's output changes, so read models built by an
# older fold are rebuilt: the embedded runner records it beside its tracking position (as the tracking entry
# VERSION_MARK) and drops and refolds read models recorded under a lower one. Distributed read models (MongoDB) are
# rebuilt with `casestream worker rebuild --from store`.
# 2: tasks carry their case's `definition_key`, definitions their `access` rules (row-level read authorization).
# 3: the `documents` read model, and document entries on the case timeline.
# 4: the `messages` and `mail_aside` read models, and e-mail entries on the case timeline.
# 5: document versions carry their scan status, scan_reason and preview; documents `available`; scan entries on the
#    timeline.
# 6: the `incidents` and `process_instances` read models; incident resolutions and variable changes on the timeline.
# 7: the `processes` and `process_versions` read models (deployed processes, answered without the event store).
VERSION = 7
VERSION_MARK = "read-models-version"
