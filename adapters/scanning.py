"""The scanning port: a verdict on an upload's bytes before they become a visible document version.

The embedded default (`NoScan`) passes everything at once; ClamAV's clamd (`adapters/clamav_scanner.py`) is used
when `CASESTREAM_CLAMAV_URL` is set. A version found infected stays quarantined with the reason on the timeline; a
scanner that cannot be reached leaves the version pending (unscanned, not downloadable) until a retry scans it
(docs/documents.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from commands.messages import ScanStatus


@dataclass(frozen=True)
class Verdict:
    """Clean, or not with the scanner's reason; `scanned` is False when no scanner could look (retry later)."""

    clean: bool
    reason: str = ""
    scanned: bool = True

    @property
    def status(self) -> ScanStatus:
        """clean, infected or unscanned: the vocabulary of ConfirmDocumentUpload.scan."""
        if not self.scanned:
            return "unscanned"
        return "clean" if self.clean else "infected"


UNSCANNED = Verdict(False, "the scanner could not be reached", scanned=False)


class ScannerUnavailable(RuntimeError):
    """The scanner could not give a verdict (unreachable, timed out, answered an error): try again later."""


class Scanner(Protocol):
    """Looks at a file's bytes (streamed) and says whether they are clean; raises ScannerUnavailable when it can't."""

    def scan(self, chunks: Iterable[bytes]) -> Verdict: ...


class NoScan:
    """Marks every upload clean at once (no scanner configured)."""

    def scan(self, chunks: Iterable[bytes]) -> Verdict:
        return Verdict(True)
