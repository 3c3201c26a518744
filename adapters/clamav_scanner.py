"""ClamAV's clamd as the scanning port: the bytes streamed with zINSTREAM over its unix socket or TCP port.

The protocol (clamd(8)): `zINSTREAM\\0`, then chunks each framed by a 4-byte big-endian length, then a zero-length
chunk; clamd answers `stream: OK`, `stream: <signature> FOUND` or `<message> ERROR`, NUL-terminated. Anything but a
verdict (no connection, a timeout, an ERROR such as the stream size limit) raises ScannerUnavailable, so the
document stays pending and is scanned again later instead of becoming visible unscanned.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from urllib.parse import urlsplit

from adapters.scanning import ScannerUnavailable, Verdict

FRAME = 64 * 1024  # clamd's StreamMaxLength counts bytes, not frames; smaller frames only cost syscalls
MAX_REPLY = 4096


def parse_address(url: str) -> tuple[int, str | tuple[str, int]]:
    """(address family, address) of `unix:///path/clamd.sock`, `unix:/path` or `tcp://host:port`."""
    parts = urlsplit(url)
    if parts.scheme == "unix" and (parts.path or parts.netloc):
        return socket.AF_UNIX, parts.path or parts.netloc
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        return socket.AF_INET, (parts.hostname, parts.port)
    raise ValueError(f"clamd address {url!r}: use unix:///path/to/clamd.sock or tcp://host:port")


class ClamdScanner:
    """Scans streamed bytes with a running clamd; one connection per scan (clamd closes it after INSTREAM)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.family, self.address = parse_address(url)
        self.url = url
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.address)
        except OSError as exc:
            sock.close()
            raise ScannerUnavailable(f"clamd at {self.url} cannot be reached: {exc}") from exc
        return sock

    @staticmethod
    def _reply(sock: socket.socket) -> str:
        data = bytearray()
        while b"\0" not in data and len(data) < MAX_REPLY:
            chunk = sock.recv(MAX_REPLY)
            if not chunk:
                break
            data.extend(chunk)
        return bytes(data).split(b"\0", 1)[0].decode("utf-8", "replace").strip()

    def ping(self) -> bool:
        """Whether clamd answers PING with PONG."""
        try:
            with self._connect() as sock:
                sock.sendall(b"zPING\0")
                return self._reply(sock) == "PONG"
        except (OSError, ScannerUnavailable):
            return False

    def scan(self, chunks: Iterable[bytes]) -> Verdict:
        with self._connect() as sock:
            try:
                sock.sendall(b"zINSTREAM\0")
                for chunk in chunks:
                    for start in range(0, len(chunk), FRAME):
                        frame = chunk[start:start + FRAME]
                        sock.sendall(struct.pack(">I", len(frame)) + frame)
                sock.sendall(struct.pack(">I", 0))
            except (BrokenPipeError, ConnectionResetError):
                pass  # clamd stops reading when it refuses the stream (size limit): its reply says why
            except OSError as exc:
                raise ScannerUnavailable(f"clamd at {self.url}: {exc}") from exc
            try:
                reply = self._reply(sock)
            except OSError as exc:
                raise ScannerUnavailable(f"clamd at {self.url} gave no verdict: {exc}") from exc
        return verdict_of(reply, self.url)


def verdict_of(reply: str, url: str = "clamd") -> Verdict:
    """The verdict in clamd's reply to INSTREAM (ScannerUnavailable for an error or an unknown answer)."""
    if reply.endswith(" OK") or reply == "OK":
        return Verdict(True)
    if "size limit exceeded" in reply:  # permanent: a retry would be refused the same way
        return Verdict(False, "too large for the virus scanner (clamd StreamMaxLength)")
    if reply.endswith(" FOUND"):
        name = reply.removeprefix("stream:").strip().removesuffix(" FOUND").strip()
        return Verdict(False, f"ClamAV found {name}")
    raise ScannerUnavailable(f"clamd at {url} answered {reply[:200]!r}")
