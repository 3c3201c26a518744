"""The scanning port against a real clamd (infra/clamav.py, EICAR signature of our own) over both of its addresses,
and the no-op adapter against the same contract where it applies."""

from __future__ import annotations

import os

import pytest

from adapters.clamav_scanner import ClamdScanner, verdict_of
from adapters.scanning import NoScan, ScannerUnavailable
from infra.clamav import EICAR_HEX
from infra.server import Server

EICAR = bytes.fromhex(EICAR_HEX)


@pytest.fixture(params=["url", "tcp_url"])
def clamd(request: pytest.FixtureRequest, clamav_server: Server) -> ClamdScanner:
    return ClamdScanner(clamav_server.info()[request.param])


def test_clean_bytes_are_clean(clamd: ClamdScanner) -> None:
    verdict = clamd.scan([b"%PDF-1.7\n", os.urandom(300_000)])
    assert (verdict.clean, verdict.scanned, verdict.status) == (True, True, "clean")


def test_eicar_is_found_even_split_across_chunks_and_frames(clamd: ClamdScanner) -> None:
    padding = os.urandom(200_000)  # pushes the signature across clamd's 64 KiB frames
    verdict = clamd.scan([padding, EICAR[:20], EICAR[20:], b"trailer"])
    assert verdict.status == "infected"
    assert "Casestream.Test.EICAR" in verdict.reason


def test_an_unreachable_clamd_gives_no_verdict(tmp_path: os.PathLike[str]) -> None:
    for url in (f"unix://{tmp_path}/missing.sock", "tcp://127.0.0.1:1"):
        with pytest.raises(ScannerUnavailable):
            ClamdScanner(url, timeout=2).scan([b"anything"])
        assert not ClamdScanner(url, timeout=2).ping()


def test_clamd_errors_are_not_verdicts_except_the_size_limit() -> None:
    with pytest.raises(ScannerUnavailable):
        verdict_of("stream: Can't allocate memory ERROR")
    too_big = verdict_of("INSTREAM size limit exceeded. ERROR")
    assert too_big.status == "infected" and "too large" in too_big.reason  # stays quarantined, never retried


def test_addresses_are_checked() -> None:
    with pytest.raises(ValueError, match="unix:///path"):
        ClamdScanner("http://127.0.0.1:3310")


def test_no_scan_passes_everything() -> None:
    assert NoScan().scan([EICAR]).status == "clean"
