"""Keycloak 26 from its Maven Central dist zip, run on loopback with one realm per test tenant."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from infra.paths import cache_dir
from infra.server import Launch, Server

KC_VERSION = "26.5.6"
HTTP_PORT = 28080
MANAGEMENT_PORT = 28081
SEED_PORT = 28082  # management port of the one-off `kc.sh import` that seeds the database template (below the
# ephemeral range, so no client socket holds it)
ADMIN_USER = "admin"
ADMIN_PASSWORD = "casestream-admin"
AUDIENCE = "casestream"
REALMS_DIR = Path(__file__).parent / "keycloak_realms"

# Build-time options, baked into the dist once by `kc.sh build`; each start then runs `start --optimized`,
# which never re-augments, so running servers never write into the shared cache.
BUILD_OPTIONS = ["--db=dev-file", "--health-enabled=true"]
BUILT_MARKER = ".casestream-built"


def find_java_home() -> Path:
    """The Temurin 25 JDK installed beside the default JDK (under /usr/lib/jvm or /opt)."""
    candidates: list[Path] = []
    for root in (Path("/usr/lib/jvm"), Path("/opt")):
        if root.is_dir():
            candidates += [p for p in root.iterdir() if "25" in p.name and "temurin" in p.name.lower()]
            candidates += [p for p in root.iterdir() if p.name.startswith("jdk-25")]
    for home in sorted(candidates):
        if (home / "bin" / "java").exists():
            return home
    raise RuntimeError("Temurin 25 JDK not found under /usr/lib/jvm or /opt (Keycloak 26 runs on it)")


def realm_names() -> list[str]:
    """Names of the realms we import (one JSON file per test tenant)."""
    return sorted(p.stem for p in REALMS_DIR.glob("*.json"))


def _realm_files() -> dict[str, bytes]:
    """The realm files' content by realm name, read once so one start sees one consistent set."""
    return {p.stem: p.read_bytes() for p in sorted(REALMS_DIR.glob("*.json"))}


def _digest(realms: dict[str, bytes]) -> str:
    digest = hashlib.sha256(f"{KC_VERSION} template v2\0".encode())
    for name, content in sorted(realms.items()):
        digest.update(f"{name}.json".encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def realms_digest() -> str:
    """SHA-256 over the realm files (and the Keycloak version): names the database template, marks a running server."""
    return _digest(_realm_files())


def realm_definition(realm: str) -> dict[str, Any]:
    """The realm JSON we import, parsed (tests read client secrets and users from it)."""
    data: dict[str, Any] = json.loads((REALMS_DIR / f"{realm}.json").read_text())
    return data


def demo_password(realm: str, user: str) -> str:
    """The password a realm's demo user signs in with (from the realm file)."""
    users = realm_definition(realm)["users"]
    credentials = next(u["credentials"] for u in users if u["username"] == user)
    return str(next(c["value"] for c in credentials if c["type"] == "password"))


def _extract(zip_path: Path, target: Path) -> None:
    """Unzip keeping the Unix mode bits (zipfile drops them, and kc.sh must stay executable)."""
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            path = Path(archive.extract(member, target))
            mode = (member.external_attr >> 16) & 0o777
            if mode and not member.is_dir():
                path.chmod(mode | stat.S_IRUSR)


class KeycloakServer(Server):
    """Keycloak with H2 (dev-file) data in the run folder, copied from a cached template holding our realms."""

    name = "keycloak"
    version = KC_VERSION
    # A start from the template takes ~1 min here, but several minutes when the 2 cores are busy.
    start_timeout = 600.0

    @property
    def dist(self) -> Path:
        return self.cache / f"keycloak-{KC_VERSION}"

    @property
    def home(self) -> Path:
        """Per-run Keycloak home: its own data/ (H2, import/), the cached dist's lib, themes, providers."""
        return self.data_dir / "home"

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.cache / "obtain.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def template(self) -> Path:
        """H2 database with the schema and our realms already in it, keyed by the realm files' content."""
        return self.cache / f"h2-template-{realms_digest()[:16]}"

    @property
    def realms_marker(self) -> Path:
        """The digest of the realm files the running server was started with."""
        return self.data_dir / "realms.sha256"

    def obtain(self) -> None:
        template = self.template  # fixed once: realm files edited while seeding must not relabel the result
        if (self.dist / BUILT_MARKER).exists() and template.exists():
            return
        with self._lock():
            if not (self.dist / BUILT_MARKER).exists():
                self._install()
            if not template.exists():
                self._seed_template(template)

    def _kc(self, home: Path, *args: str, what: str, env: dict[str, str] | None = None) -> None:
        """Run one kc.sh command to completion; fail with its output tail."""
        argv = [str(self.dist / "bin" / "kc.sh"), f"-Dkc.home.dir={home}", *args]
        done = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **self._env(), **(env or {})},
            timeout=1800,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stdout.splitlines()[-40:])
            raise RuntimeError(f"kc.sh {what} failed ({done.returncode}):\n{tail}")

    def _install(self) -> None:
        zip_path = self._download()
        if self.dist.exists():
            shutil.rmtree(self.dist)  # a half-finished unzip or build from an interrupted run
        unpack = self.cache / "unpack.tmp"
        shutil.rmtree(unpack, ignore_errors=True)
        _extract(zip_path, unpack)
        (unpack / self.dist.name).rename(self.dist)
        unpack.rmdir()
        self._kc(self.dist, "build", *BUILD_OPTIONS, what="build")
        (self.dist / BUILT_MARKER).write_text(" ".join(BUILD_OPTIONS) + "\n")

    def _seed_template(self, template: Path) -> None:
        # Creating the schema and importing the realms takes minutes on this machine: do it once per realm
        # set with `kc.sh import`, and let every start copy the resulting database into its run folder.
        work = self.cache / "template.tmp"
        shutil.rmtree(work, ignore_errors=True)
        home = work / "home"
        realms = _realm_files()
        if _digest(realms)[:16] not in template.name:
            raise RuntimeError("the realm files changed while Keycloak was being prepared; start it again")
        self._lay_out_home(home, realms)
        # The import command still opens a management interface: keep it on loopback, off our ports.
        seed_env = {"KC_HTTP_HOST": "127.0.0.1", "KC_HTTP_MANAGEMENT_PORT": str(SEED_PORT), "KC_CACHE": "local"}
        import_dir = home / "data" / "import"
        self._kc(home, "import", "--optimized", f"--dir={import_dir}", what="import", env=seed_env)
        (home / "data" / "h2").rename(template)
        shutil.rmtree(work)

    def _lay_out_home(self, home: Path, realms: dict[str, bytes]) -> None:
        """A Keycloak home of our own: data/ is real, lib/themes/providers point into the cached dist."""
        import_dir = home / "data" / "import"
        import_dir.mkdir(parents=True)
        for part in ("lib", "themes", "providers"):
            (home / part).symlink_to(self.dist / part)
        for name, content in realms.items():
            # `kc.sh import --dir` only reads files named <realm>-realm.json.
            (import_dir / f"{name}-realm.json").write_bytes(content)

    def _env(self) -> dict[str, str]:
        return {
            "JAVA_HOME": str(find_java_home()),
            "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USER,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            # Java 24+ refuses jboss-threads' thread-local reset on worker threads without this.
            "JAVA_OPTS_APPEND": "--add-opens=java.base/java.lang=ALL-UNNAMED",
        }

    def _download(self) -> Path:
        zip_path = self.cache / "download" / f"keycloak-quarkus-dist-{KC_VERSION}.zip"
        if zip_path.exists():
            return zip_path
        if shutil.which("mvn") is None:
            subprocess.run(["apt-get", "update", "-q"], check=True)
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "maven"],
                check=True,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "dependency:copy",
                f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{KC_VERSION}:zip",
                f"-DoutputDirectory={zip_path.parent}",
                f"-Dmaven.repo.local={cache_dir() / 'm2'}",
            ],
            check=True,
        )
        return zip_path

    def prepare(self) -> Launch:
        realms = _realm_files()
        template = self.cache / f"h2-template-{_digest(realms)[:16]}"
        if not template.exists():
            raise RuntimeError("the realm files changed while Keycloak was being prepared; start it again")
        self._lay_out_home(self.home, realms)
        shutil.copytree(template, self.home / "data" / "h2")
        self.realms_marker.write_text(_digest(realms) + "\n")
        argv = [
            str(self.dist / "bin" / "kc.sh"),
            # Keycloak reads data/ (H2 files, import/) under its home: point it at the run folder.
            f"-Dkc.home.dir={self.home}",
            "start",
            "--optimized",
            # The realms are already in the copied database (an existing realm is skipped); this only
            # matters if the template and the realm files ever disagree.
            "--import-realm",
            "--http-enabled=true",
            "--hostname-strict=false",
            # Without it Infinispan clusters through JGroups, listening on every interface (port 7800).
            "--cache=local",
            "--http-host=127.0.0.1",
            f"--http-port={HTTP_PORT}",
            f"--http-management-port={MANAGEMENT_PORT}",
        ]
        return Launch(argv=argv, env=self._env(), cwd=self.data_dir)

    def healthy(self) -> bool:
        with httpx.Client(timeout=3.0) as client:
            ready = client.get(f"{self.management_url()}/health/ready")
            if ready.status_code != 200 or ready.json().get("status") != "UP":
                return False
            # A server started from other realm files is not ours any more: `up` restarts it with the new realms.
            if not self.realms_marker.exists() or self.realms_marker.read_text().strip() != realms_digest():
                return False
            for realm in realm_names():
                discovery = client.get(f"{self.issuer(realm)}/.well-known/openid-configuration")
                if discovery.status_code != 200 or discovery.json().get("issuer") != self.issuer(realm):
                    return False
        return True

    def url(self) -> str:
        return f"http://127.0.0.1:{HTTP_PORT}"

    def management_url(self) -> str:
        return f"http://127.0.0.1:{MANAGEMENT_PORT}"

    def issuer(self, realm: str) -> str:
        """The realm's issuer; tokens carry the host the client called, so always 127.0.0.1."""
        return f"{self.url()}/realms/{realm}"

    def token_endpoint(self, realm: str) -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/token"

    def jwks_uri(self, realm: str) -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/certs"

    def info(self) -> dict[str, str]:
        result = {
            "url": self.url(),
            "management_url": self.management_url(),
            "admin_user": ADMIN_USER,
            "admin_password": ADMIN_PASSWORD,
            "audience": AUDIENCE,
            "realms": ",".join(realm_names()),
        }
        for realm in realm_names():
            result[f"issuer_{realm}"] = self.issuer(realm)
        return result
