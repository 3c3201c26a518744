"""Reading a server-sent event stream (/api/events) in tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def collect_sse(lines: Iterable[str], out: list[dict[str, Any]], want: int) -> None:
    """Append each message of the stream's lines to out ({"id", "event", "data"}) until out holds `want`."""
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith("id:"):
            current["id"] = int(line[3:].strip())
        elif line.startswith("event:"):
            current["event"] = line[6:].strip()
        elif line.startswith("data:"):
            current["data"] = json.loads(line[5:].strip())
        elif line == "" and "data" in current:
            out.append(current)
            current = {}
            if len(out) >= want:
                return
