"""ClamAV's clamd from Debian's `clamav-daemon`, run as a private instance with a signature database of our own.

Signature downloads (freshclam) are not reachable here, so the database is one body signature we write: the EICAR
anti-virus test file (as hex, so this source is no test file itself). clamd listens on a unix socket in the run
folder and on a loopback TCP port; the document scanner (adapters/clamav_scanner.py) speaks either.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from adapters.clamav_scanner import ClamdScanner
from infra.server import Launch, Server

HOST = "127.0.0.1"
CLAMD_PORT = 28310
CLAMD = Path("/usr/sbin/clamd")
# name:target type (0 = any file):offset (* = anywhere):hex body — ClamAV's .ndb format
EICAR_HEX = (
    "58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d"
    "544553542d46494c452124482b482a"
)
SIGNATURES = f"Casestream.Test.EICAR:0:*:{EICAR_HEX}\n"
STREAM_MAX = "200M"  # the largest upload clamd accepts; bigger ones are quarantined as too large to scan


class ClamavServer(Server):
    """clamd on 127.0.0.1:28310 and on `<run>/clamav/data/clamd.sock`, knowing only the EICAR test signature."""

    name = "clamav"
    version = "debian"
    start_timeout = 120.0  # loading the engine takes a few seconds on a busy machine

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "clamd.sock"

    def obtain(self) -> None:
        if CLAMD.exists():
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        # no recommends: clamdscan and the documentation are not needed; freshclam comes as a dependency but never runs
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "clamav-daemon"],
                       check=True, env=env)

    def prepare(self) -> Launch:
        database = self.data_dir / "db"
        database.mkdir()
        (database / "casestream-test.ndb").write_text(SIGNATURES)
        conf = self.data_dir / "clamd.conf"
        conf.write_text("\n".join([
            "Foreground yes",
            f"LocalSocket {self.socket_path}",
            "LocalSocketMode 660",
            f"TCPSocket {CLAMD_PORT}",
            f"TCPAddr {HOST}",
            f"DatabaseDirectory {database}",
            f"TemporaryDirectory {self.data_dir}",
            "LogTime yes",
            f"StreamMaxLength {STREAM_MAX}",
            f"MaxScanSize {STREAM_MAX}",
            f"MaxFileSize {STREAM_MAX}",
            "SelfCheck 0",  # the database never changes while it runs
            "ReadTimeout 60",
            "",
        ]))
        return Launch(argv=[str(CLAMD), f"--config-file={conf}"], cwd=self.data_dir)

    def url(self) -> str:
        """The scanner address (CASESTREAM_CLAMAV_URL) of the unix socket."""
        return f"unix://{self.socket_path}"

    def tcp_url(self) -> str:
        return f"tcp://{HOST}:{CLAMD_PORT}"

    def healthy(self) -> bool:
        return ClamdScanner(self.url(), timeout=2.0).ping() and ClamdScanner(self.tcp_url(), timeout=2.0).ping()

    def info(self) -> dict[str, str]:
        return {"url": self.url(), "tcp_url": self.tcp_url(), "host": HOST, "port": str(CLAMD_PORT)}
