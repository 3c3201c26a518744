"""The timeline's per-type folds write exactly the entry the general `entry` writes, for every event type."""

from __future__ import annotations

import orjson
import pytest

from projections.timeline import FOLDS, SUMMARIES, entry
from tests.unit.test_codec_upcast import _sample


@pytest.mark.parametrize("event_type", sorted(SUMMARIES, key=lambda t: t.__name__), ids=lambda t: t.__name__)
def test_the_fold_of_each_type_is_the_general_entry(event_type: type) -> None:
    event = _sample(event_type.__name__)
    assert orjson.dumps(FOLDS[event_type](None, event)) == orjson.dumps(entry(None, event))


def test_case_events_have_their_own_fold() -> None:
    # the ones that never name a case in a `case_id` (the case events): the point of the per-type folds
    assert sum(fold is not entry for fold in FOLDS.values()) >= 13
