"""The built-in issuer's users file, its password login with lockout, and `casestream users`."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.password_login import BadCredentials, LoginLocked, LoginThrottle, NotAMember, PasswordLogin
from adapters.user_directory import DEMO_PASSWORD, UserDirectory, UserFileInvalid, read_users
from casestream.bootstrap import build_event_store
from casestream.cli import app
from casestream.settings import Settings


@pytest.fixture()
def users_file(tmp_path: Path) -> Path:
    return tmp_path / "users.json"


def test_a_missing_users_file_is_created_with_the_demo_users_readable_by_the_owner_only(users_file: Path) -> None:
    directory = UserDirectory.open_or_create_demo(users_file)
    assert users_file.stat().st_mode & 0o777 == 0o600
    users = directory.users()
    assert sorted(users) == ["admin", "alice", "bob", "carol"]
    assert users["alice"].memberships["acme"].roles == ("caseworker",)
    assert users["alice"].memberships["acme"].groups == ("claims-team",)
    assert users["bob"].memberships["acme"].groups == ("claims-team",)
    assert sorted(users["admin"].memberships) == ["acme", "globex"]
    assert DEMO_PASSWORD not in users_file.read_text()  # hashes only
    assert sorted(directory.with_password(DEMO_PASSWORD)) == ["admin", "alice", "bob", "carol"]


def test_authenticate_checks_the_argon2_hash(users_file: Path) -> None:
    directory = UserDirectory.open_or_create_demo(users_file)
    assert directory.authenticate("bob", DEMO_PASSWORD) is not None
    assert directory.authenticate("bob", "wrong") is None
    assert directory.authenticate("mallory", DEMO_PASSWORD) is None


def test_an_unknown_user_costs_as_much_as_a_wrong_password(users_file: Path) -> None:
    directory = UserDirectory.open_or_create_demo(users_file)

    def median(name: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            directory.authenticate(name, "wrong")
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    known, unknown = median("bob"), median("mallory")
    assert unknown > known / 3, (known, unknown)  # a hash is verified either way (without: ~1000x cheaper)


def test_a_malformed_users_file_names_the_field(users_file: Path) -> None:
    eve = {"password": "x", "memberships": {"acme": {"roles": ["god"]}}}
    users_file.write_text(json.dumps({"users": {"eve": eve}}))
    with pytest.raises(UserFileInvalid, match=r"users\.eve\.memberships\.acme\.roles: unknown role\(s\) god"):
        read_users(users_file)


def _login(users_file: Path, failures: int = 3, lockout: float = 0.5) -> PasswordLogin:
    throttle = LoginThrottle(failures, lockout, window_seconds=60)  # each argon2 check takes a while on a busy box
    return PasswordLogin(UserDirectory.open_or_create_demo(users_file), throttle, "acme")


def test_login_picks_the_default_tenant_or_the_first_membership_and_refuses_others(users_file: Path) -> None:
    login = _login(users_file)
    assert login.login("alice", DEMO_PASSWORD, None, "10.0.0.1").tenant == "acme"
    granted = login.login("admin", DEMO_PASSWORD, "globex", "10.0.0.1")
    assert (granted.tenant, granted.membership.roles) == ("globex", ("admin", "supervisor"))
    with pytest.raises(NotAMember, match="alice is not a member of tenant globex"):
        login.login("alice", DEMO_PASSWORD, "globex", "10.0.0.1")
    other = _login(users_file.with_name("other.json"))
    other.default_tenant = "globex"
    assert other.login("alice", DEMO_PASSWORD, None, "10.0.0.1").tenant == "acme"  # not the default: first one


def test_a_user_is_locked_out_after_n_failures_even_with_the_right_password(users_file: Path) -> None:
    login = _login(users_file)
    for n in range(3):
        with pytest.raises(BadCredentials):
            login.login("bob", "guess", None, f"10.0.0.{n}")  # a different address each time: the user lock
    with pytest.raises(LoginLocked) as locked:
        login.login("bob", DEMO_PASSWORD, None, "10.0.0.9")
    assert 0 < locked.value.retry_after <= 0.5
    assert login.login("alice", DEMO_PASSWORD, None, "10.0.0.9").user == "alice"  # others are not locked
    time.sleep(0.6)
    assert login.login("bob", DEMO_PASSWORD, None, "10.0.0.9").user == "bob"


def test_an_address_is_locked_out_after_n_failures_across_user_names(users_file: Path) -> None:
    login = _login(users_file)
    for name in ("alice", "bob", "nobody"):
        with pytest.raises(BadCredentials):
            login.login(name, "guess", None, "10.0.0.66")
    with pytest.raises(LoginLocked):
        login.login("carol", DEMO_PASSWORD, None, "10.0.0.66")
    assert login.login("carol", DEMO_PASSWORD, None, "10.0.0.67").user == "carol"


def test_users_cli_adds_grants_revokes_and_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASESTREAM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "dave", "--tenant", "globex", "--role", "viewer", "--password-stdin"],
                          input="s3cret-pass\n")
    assert added.exit_code == 0, added.output
    granted = runner.invoke(app, ["users", "grant", "dave", "--tenant", "acme", "-r", "caseworker",
                                  "-g", "claims-team"])
    assert granted.exit_code == 0, granted.output
    directory = UserDirectory(tmp_path / "users.json")
    dave = directory.get("dave")
    assert dave is not None and dave.check_password("s3cret-pass")
    assert dave.memberships["acme"].groups == ("claims-team",)
    revoked = runner.invoke(app, ["users", "revoke", "dave", "--tenant", "globex"])
    assert revoked.exit_code == 0, revoked.output
    assert "globex" not in (directory.get("dave") or dave).memberships
    listed = runner.invoke(app, ["users", "list"])
    assert "dave  acme: caseworker (groups claims-team)" in listed.output
    assert "$argon2" not in listed.output
    store = build_event_store(Settings(data_dir=tmp_path))
    try:  # add, grant and revoke each reached the audit log
        assert store.max_position() >= 3
    finally:
        store.close()


def test_users_cli_names_the_option_on_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASESTREAM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    bad_role = runner.invoke(app, ["users", "grant", "alice", "--tenant", "acme", "--role", "wizard"])
    assert bad_role.exit_code != 0 and "--role" in bad_role.output and "wizard" in bad_role.output
    bad_user = runner.invoke(app, ["users", "grant", "ghost", "--tenant", "acme", "--role", "viewer"])
    assert bad_user.exit_code != 0 and "no user 'ghost'" in bad_user.output
    empty = runner.invoke(app, ["users", "add", "erin", "--password-stdin"], input="\n")
    assert empty.exit_code != 0 and "password" in empty.output


def test_token_cli_refuses_a_tenant_the_user_is_not_a_member_of(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASESTREAM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    refused = runner.invoke(app, ["token", "--user", "alice", "--tenant", "globex"])
    assert refused.exit_code != 0 and "--tenant" in refused.output and "not a member" in refused.output
    assert runner.invoke(app, ["token", "--user", "admin", "--tenant", "globex"]).exit_code == 0
    assert runner.invoke(app, ["token", "--user", "script-bot", "--tenant", "globex"]).exit_code == 0


def test_a_users_file_broken_while_running_keeps_the_last_good_users(users_file: Path) -> None:
    directory = UserDirectory.open_or_create_demo(users_file)
    users_file.write_text("{not json")
    assert directory.authenticate("alice", DEMO_PASSWORD) is not None
    users_file.unlink()
    assert directory.authenticate("alice", DEMO_PASSWORD) is not None
    with pytest.raises(UserFileInvalid, match="not JSON"):
        users_file.write_text("{not json")
        UserDirectory(users_file)  # at start, a broken file stops the server
