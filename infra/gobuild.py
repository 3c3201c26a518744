"""Build Go programs from the Go module proxy into the casestream cache, once, under a file lock."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from infra.paths import cache_dir

# A cold build of a large module on 2 shared cores can take many minutes.
BUILD_TIMEOUT = 3600.0


class GoBuildError(RuntimeError):
    """`go build`/`go install` failed; the message carries the tail of its output."""


def go_root() -> Path:
    """Shared Go state (module cache, build cache, GOPATH) kept across clones."""
    path = cache_dir() / "go"
    path.mkdir(parents=True, exist_ok=True)
    return path


def go_binary() -> str:
    """The `go` tool to use: on PATH, else the usual install folder."""
    found = shutil.which("go")
    if found:
        return found
    fallback = Path("/usr/local/go/bin/go")
    if fallback.exists():
        return str(fallback)
    raise GoBuildError("the Go toolchain ('go') was not found on PATH or in /usr/local/go/bin")


def go_env(gobin: Path | None = None) -> dict[str, str]:
    """Environment for go: caches under the casestream cache, modules resolved by go.mod, local toolchain."""
    root = go_root()
    env = dict(os.environ)
    env.update(
        {
            "GOPATH": str(root / "path"),
            "GOMODCACHE": str(root / "mod"),
            "GOCACHE": str(root / "build"),
            # vendor folders are never used; a toolchain download would leave the registries
            "GOFLAGS": "-mod=mod -buildvcs=false",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": env.get("CGO_ENABLED", "0"),
        }
    )
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    return env


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl lock on path so two processes never build the same thing at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_go(args: Sequence[str], *, cwd: Path | None, env: dict[str, str], log: Path) -> None:
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(f"$ go {' '.join(args)}\n".encode())
        out.flush()
        proc = subprocess.run(
            [go_binary(), *args],
            cwd=str(cwd) if cwd else None,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
        out.write(f"# exit {proc.returncode} after {time.monotonic() - started:.0f}s\n".encode())
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise GoBuildError(f"go {' '.join(args)} failed (exit {proc.returncode}). Log tail:\n{tail}")


def go_install(package: str, version: str, dest: Path, binary: str) -> Path:
    """`go install package@version` into dest (GOBIN) unless dest/binary exists; return the binary path."""
    target = dest / binary
    if target.exists():
        return target
    with file_lock(dest / ".build.lock"):
        if target.exists():  # another process built it while we waited
            return target
        dest.mkdir(parents=True, exist_ok=True)
        # install into a scratch GOBIN and move the binary last, so a killed build leaves no half binary
        scratch = dest / ".gobin"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        _run_go(
            ["install", "-trimpath", f"{package}@{version}"],
            cwd=dest,
            env=go_env(gobin=scratch),
            log=dest / "build.log",
        )
        built = scratch / binary
        if not built.exists():
            raise GoBuildError(f"go install {package}@{version} did not produce {built}")
        built.replace(target)
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def go_build(source: Path, dest: Path, binary: str) -> Path:
    """`go build` the main module in source into dest/binary unless it exists; return the binary path."""
    target = dest / binary
    if target.exists():
        return target
    with file_lock(dest / ".build.lock"):
        if target.exists():
            return target
        dest.mkdir(parents=True, exist_ok=True)
        partial = dest / f".{binary}.partial"
        _run_go(
            ["build", "-trimpath", "-o", str(partial), "."],
            cwd=source,
            env=go_env(),
            log=dest / "build.log",
        )
        # rename last so a half-written binary is never taken for a finished one
        partial.replace(target)
    return target
