"""A headless Chromium for browser tests: Debian's `chromium` package, installed with apt when missing.

Playwright's own browser download is not used (it fetches a build from outside the package registries);
tests launch Playwright with `executable_path=ensure_chromium()` and `CHROMIUM_ARGS` instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

from infra.paths import cache_dir

# Where Debian's package puts the browser, then other names it goes by.
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
# Flags for a quiet headless run in a container: no sandbox (root), no GPU, nothing phoning home.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
INSTALL_TIMEOUT = 1800.0


class BrowserInstallError(RuntimeError):
    """Chromium is missing and apt could not install it; the message carries the tail of apt's output."""


def find_chromium() -> str | None:
    """The path of an installed Chromium (`CASESTREAM_CHROMIUM` first), or None."""
    override = os.environ.get("CASESTREAM_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _apt(*args: str) -> None:
    command = ["apt-get", *args]
    if os.geteuid() != 0 and shutil.which("sudo"):
        command = ["sudo", "-n", *command]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrowserInstallError(f"{' '.join(command)} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise BrowserInstallError(f"{' '.join(command)} exited {done.returncode}:\n{tail}")


def ensure_chromium() -> str:
    """Return the Chromium path, installing Debian's `chromium` package first when it is missing.

    The install runs under a file lock in the casestream cache, so parallel test sessions install it once.
    """
    found = find_chromium()
    if found:
        return found
    if os.environ.get("CASESTREAM_CHROMIUM"):
        raise BrowserInstallError(f"CASESTREAM_CHROMIUM={os.environ['CASESTREAM_CHROMIUM']} does not exist")
    lock_path = cache_dir() / "chromium-install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            found = find_chromium()  # another process may have installed it while we waited
            if found:
                return found
            _apt("update")
            _apt("install", "-y", "chromium")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    found = find_chromium()
    if not found:
        raise BrowserInstallError("apt-get installed chromium but no chromium binary was found on PATH")
    return found
