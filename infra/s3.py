"""S3 from SeaweedFS (Apache-2.0), built once from the Go module proxy, run as `weed server -s3` on loopback.

One `weed server` process holds master, volume, filer and the S3 gateway; every port is on 127.0.0.1 and
all state sits in the run folder. Static credentials come from an S3 identities file (docs/s3.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from minio import Minio

from infra.gobuild import GoBuildError, file_lock, go_binary, go_env
from infra.process import stop_pid
from infra.server import Launch, Server

HOST = "127.0.0.1"
S3_PORT = 28333
# weed's other listeners; the gRPC ports are pinned too (weed's default is port + 10000)
MASTER_PORT = 28334
VOLUME_PORT = 28335
FILER_PORT = 28336
GRPC_OFFSET = 100
ACCESS_KEY = "casestream"
SECRET_KEY = "casestream-secret-key"
REGION = "us-east-1"

# SeaweedFS tags are not Go semver, so the module proxy serves pseudo-versions only: pin one commit.
WEED_MODULE = "github.com/seaweedfs/seaweedfs"
WEED_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
# `go install pkg@version` refuses modules whose go.mod has replace lines; SeaweedFS has this one,
# so the build runs from a tiny wrapper module that repeats it.
WEED_REPLACES = ("github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0",)
GO_VERSION_LINE = "go 1.26.6"
BUILD_TIMEOUT = 3600.0
STOP_GRACE = 5.0


def _go_env() -> dict[str, str]:
    """The shared Go environment (caches under the casestream cache), keeping cgo as the machine has it."""
    env = go_env()
    env["CGO_ENABLED"] = os.environ.get("CGO_ENABLED", "1")
    return env


def build_weed(dest: Path) -> None:
    """Build the weed binary at dest through a wrapper module (no-op when it is there)."""
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.parent / "build.lock"):
        if dest.exists():  # another process built it while we waited
            return
        wrapper = dest.parent / "wrapper"
        wrapper.mkdir(exist_ok=True)
        replaces = "".join(f"replace {line}\n" for line in WEED_REPLACES)
        (wrapper / "go.mod").write_text(
            f"module casestream.local/weedbuild\n\n{GO_VERSION_LINE}\n\n"
            f"require {WEED_MODULE} {WEED_VERSION}\n\n{replaces}"
        )
        log = dest.parent / "build.log"
        tmp = dest.with_suffix(".tmp")
        started = time.monotonic()
        with log.open("ab") as out:
            proc = subprocess.run(
                [go_binary(), "build", "-mod=mod", "-p", "2", "-o", str(tmp), f"{WEED_MODULE}/weed"],
                cwd=wrapper,
                env=_go_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
            out.write(f"# exit {proc.returncode} after {time.monotonic() - started:.0f}s\n".encode())
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise GoBuildError(f"building SeaweedFS failed (log {log}):\n{tail}")
        tmp.rename(dest)


class S3Server(Server):
    """SeaweedFS master + volume + filer + S3 gateway in one process; S3 on 127.0.0.1:28333."""

    name = "s3"
    version = WEED_VERSION
    start_timeout = 120.0

    @property
    def binary(self) -> Path:
        return self.cache / "weed"

    def obtain(self) -> None:
        build_weed(self.binary)

    def prepare(self) -> Launch:
        identities = {
            "identities": [
                {
                    "name": "casestream",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps(identities, indent=2))
        config.chmod(0o600)
        (self.data_dir / "store").mkdir()
        return self._launch()

    def resumable(self) -> bool:
        """An earlier start's volumes and filer metadata (filerldb2, in the working folder) are there."""
        return (self.data_dir / "s3.json").exists() and (self.data_dir / "store").is_dir()

    def resume(self) -> Launch:
        return self._launch()

    def _launch(self) -> Launch:
        config = self.data_dir / "s3.json"
        store = self.data_dir / "store"
        argv = [
            str(self.binary),
            "server",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-dir={store}",
            f"-master.port={MASTER_PORT}",
            f"-master.port.grpc={MASTER_PORT + GRPC_OFFSET}",
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={VOLUME_PORT}",
            f"-volume.port.grpc={VOLUME_PORT + GRPC_OFFSET}",
            "-volume.max=100",
            # the default 10 s pause between the last heartbeat and stopping only slows down()
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={FILER_PORT}",
            f"-filer.port.grpc={FILER_PORT + GRPC_OFFSET}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={S3_PORT}",
            f"-s3.port.grpc={S3_PORT + GRPC_OFFSET}",
            # extra listeners this project does not use (their defaults are 8181 and 9101 on the bind ip)
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
        ]
        return Launch(argv=argv, cwd=self.data_dir)

    def client(self) -> Minio:
        """A minio client (the product's S3 client) for this server."""
        return Minio(
            f"{HOST}:{S3_PORT}",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            secure=False,
            region=REGION,
        )

    def healthy(self) -> bool:
        self.client().list_buckets()
        return True

    def down(self) -> None:
        """Stop weed by its PID, with a short grace period before SIGKILL."""
        pid = self.pid()
        if pid is not None:
            # after SIGTERM the filer waits ~15 s to flush a metadata log to the volume server that has already
            # stopped; that log is a change feed, the files and the filer's store (filerldb2) are already on disk
            stop_pid(pid, timeout=STOP_GRACE)
        self.pid_file.unlink(missing_ok=True)
        # weed puts its gRPC sockets in /tmp (not configurable); a killed weed leaves them behind
        for service, port in (
            ("master", MASTER_PORT),
            ("volume", VOLUME_PORT),
            ("filer", FILER_PORT),
            ("s3", S3_PORT),
        ):
            Path(f"/tmp/seaweedfs-{service}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)

    def info(self) -> dict[str, str]:
        return {
            "endpoint": f"http://{HOST}:{S3_PORT}",
            "host": f"{HOST}:{S3_PORT}",
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region": REGION,
            "secure": "false",
        }
