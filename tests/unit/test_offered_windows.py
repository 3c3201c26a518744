"""The runner's decoded windows kept for a follower: taken when they cover its position, cut at a limit, and
given up (read the store) when the follower is behind or ahead of them."""

from __future__ import annotations

from typing import Any, cast

from domain.events import Positioned
from processes.offered_windows import OfferedWindows


def window(after: int, last: int) -> list[Positioned]:
    return [Positioned(p, cast(Any, f"e{p}")) for p in range(after + 1, last + 1)]


def positions(taken: tuple[list[Positioned], int] | None) -> tuple[list[int], int] | None:
    return None if taken is None else ([p.position for p in taken[0]], taken[1])


def test_a_window_starting_at_the_position_is_taken_whole_and_then_gone() -> None:
    kept = OfferedWindows()
    kept.offer(0, 3, window(0, 3))
    assert positions(kept.take(0)) == ([1, 2, 3], 3)
    assert not kept and kept.take(3) is None


def test_a_window_covering_the_position_gives_only_what_follows_it() -> None:
    kept = OfferedWindows()
    kept.offer(0, 5, window(0, 5))
    assert positions(kept.take(2)) == ([3, 4, 5], 5)


def test_a_limit_inside_a_window_keeps_the_rest_for_the_next_take() -> None:
    kept = OfferedWindows()
    kept.offer(0, 5, window(0, 5))
    kept.offer(5, 7, window(5, 7))
    assert positions(kept.take(0, limit=2)) == ([1, 2], 2)
    assert positions(kept.take(2, limit=10)) == ([3, 4, 5], 5)
    assert positions(kept.take(5)) == ([6, 7], 7)


def test_windows_behind_the_position_are_dropped_and_one_ahead_of_it_is_not_taken() -> None:
    kept = OfferedWindows(kept=2)
    for after in (0, 2, 4):  # the first falls out: only two are kept
        kept.offer(after, after + 2, window(after, after + 2))
    assert kept.take(0) is None  # (0, 2] is gone: the store is read
    assert positions(kept.take(3)) == ([4], 4)
    assert kept.take(7) is None and not kept  # past every kept window
