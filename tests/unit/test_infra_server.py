"""infra's Server.up never wipes the data of a server it did not start (a stranger holding its port)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from infra.process import ServerStartError
from infra.server import Launch, Server


class _Tiny(Server):
    """A server whose one port is `port` and whose process is `sleep`."""

    name = "tiny-test-server"
    version = "1"

    def __init__(self, port: int) -> None:
        self.port = port

    def obtain(self) -> None:
        return None

    def prepare(self) -> Launch:
        return Launch(["sleep", "30"])

    def healthy(self) -> bool:
        return True

    def info(self) -> dict[str, str]:
        return {"url": f"http://127.0.0.1:{self.port}", "other_url": "http://127.0.0.1:1"}


def test_a_port_held_by_an_unknown_process_stops_the_start_and_keeps_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASESTREAM_RUN_DIR", str(tmp_path))
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        server = _Tiny(stranger.getsockname()[1])
        assert server.ports() == [server.port]
        server.data_dir.mkdir(parents=True)
        (server.data_dir / "precious").write_text("the stranger's data")
        with pytest.raises(ServerStartError, match="did not start"):
            server.up()
        assert (server.data_dir / "precious").read_text() == "the stranger's data"
        assert server.pid() is None


def test_a_free_port_starts_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASESTREAM_RUN_DIR", str(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    server = _Tiny(free)
    try:
        assert server.up() is True
        assert server.pid() is not None
    finally:
        server.down()
