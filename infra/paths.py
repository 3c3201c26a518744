"""Where infra/ keeps downloads, builds and running servers' state.

Downloads and builds go to a cache outside the clone (CI clones afresh each run, so a cache inside
the clone would be lost); running state (data folders, pid files, logs) goes to a run folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Folder for downloads and builds, kept across clones: `CASESTREAM_CACHE_DIR` or ~/.cache."""
    base = os.environ.get("CASESTREAM_CACHE_DIR") or str(Path.home() / ".cache" / "casestream")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir() -> Path:
    """Folder for running servers' data, pid files and logs: `CASESTREAM_RUN_DIR` or /tmp."""
    base = os.environ.get("CASESTREAM_RUN_DIR") or "/tmp/casestream-run"
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
