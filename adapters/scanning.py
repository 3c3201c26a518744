"""The scanning port: a verdict on an upload's bytes before they become a visible document version.

The default adapter passes everything at once (embedded mode). A virus scanner (ClamAV's clamd) plugs in here;
a version found infected is then to be recorded as quarantined with the reason (docs/documents.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Verdict:
    """Clean, or not with the scanner's reason."""

    clean: bool
    reason: str = ""


class Scanner(Protocol):
    """Looks at a file's bytes (streamed) and says whether they are clean."""

    def scan(self, chunks: Iterable[bytes]) -> Verdict: ...


class NoScan:
    """Marks every upload clean at once (no scanner configured)."""

    def scan(self, chunks: Iterable[bytes]) -> Verdict:
        return Verdict(True)
