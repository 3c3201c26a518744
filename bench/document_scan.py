"""What scanning and previews cost a document: the upload confirm's single read of the stored bytes (SHA-256 +
sniffer) with no scanner (the same-run baseline) beside the same read streamed through the real clamd (unix socket
and TCP), and the time to draw a thumbnail of a photo, a PDF and a text.

Rounds interleave the variants so a busy neighbour hits all alike; figures are medians over rounds.

    python bench/document_scan.py --quick
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from adapters.clamav_scanner import ClamdScanner
from adapters.document_uploads import measure
from adapters.local_storage import LocalFolderStorage
from adapters.previews import render
from adapters.scanning import NoScan, Scanner
from bench.common import banner, table
from infra.clamav import ClamavServer

MIB = 1024 * 1024


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _photo() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (4000, 3000), os.urandom(4000 * 3000 * 3)).save(out, "JPEG", quality=85)
    return out.getvalue()


def _pdf() -> bytes:
    out = io.BytesIO()
    pages = [Image.new("RGB", (1240, 1754), "white") for _ in range(20)]  # A4 at 150 dpi, 20 pages
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:])
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    clamd = ClamavServer()
    if not clamd.running():
        raise SystemExit("clamd is not running: casestream infra up clamav")
    scanners: dict[str, Scanner] = {"no scanner (baseline)": NoScan(), "clamd, unix socket": ClamdScanner(
        clamd.url()), "clamd, TCP": ClamdScanner(clamd.tcp_url())}
    banner("document scan and preview", f"{rounds} rounds; the confirm's read of a stored object, by scanner")

    with tempfile.TemporaryDirectory(prefix="cs-bench-scan-") as folder:
        storage = LocalFolderStorage(Path(folder), b"k" * 32, "http://127.0.0.1")
        sizes = (1, 16)
        for mib in sizes:
            storage.put(f"t/c/uploads/{mib}", io.BytesIO(os.urandom(mib * MIB)), mib * MIB, "application/pdf")
        seconds: dict[tuple[str, int], list[float]] = {}
        for _ in range(rounds):
            for mib in sizes:
                for name, scanner in scanners.items():
                    seconds.setdefault((name, mib), []).append(
                        _timed(lambda s=scanner, m=mib: measure(storage, f"t/c/uploads/{m}", s)))
        rows = []
        for mib in sizes:
            base = statistics.median(seconds[("no scanner (baseline)", mib)])
            for name in scanners:
                took = statistics.median(seconds[(name, mib)])
                rows.append([f"{mib} MiB", name, round(mib / took, 1), round(took * 1000, 1), round(took / base, 2)])
        table(["object", "scanner", "MB/s", "ms", "x baseline"], rows)

    samples = {"photo 4000x3000 JPEG": ("image/jpeg", _photo()), "PDF, 20 A4 pages": ("application/pdf", _pdf()),
               "text 1 MiB": ("text/plain", b"a line of words\n" * 65_536)}
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, (kind, data) in samples.items():
            times.setdefault(name, []).append(_timed(lambda k=kind, d=data: render(k, [d])))
    table(["preview of", "bytes", "ms (median)"],
          [[name, len(samples[name][1]), round(statistics.median(t) * 1000, 1)] for name, t in times.items()])


if __name__ == "__main__":
    main()
