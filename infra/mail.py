"""Postfix (SMTP) delivering over LMTP into Dovecot (IMAP), both from Debian, as private loopback instances.

The system services are never used: each start lays fresh configs, queue and mailboxes in the run
folder. One MailServer owns two processes (Dovecot, then Postfix), each with its own pid file.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import hashlib
import imaplib
import os
import pwd
import secrets
import shutil
import smtplib
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

from infra.process import (
    ServerStartError,
    log_tail,
    port_open,
    read_pid,
    spawn,
    stop_pid,
    wait_healthy,
)
from infra.server import Launch, Server

IMAP_PORT = 28143
SMTP_PORT = 28025
HOST = "127.0.0.1"
DOMAIN = "casestream.test"
# test mailboxes: address -> password (test-only secrets for a loopback server)
MAILBOXES: dict[str, str] = {
    f"cases@{DOMAIN}": "cases-secret",
    f"alice@{DOMAIN}": "alice-secret",
    f"bob@{DOMAIN}": "bob-secret",
}
# the system user owning every maildir (exists on Debian; uid 8)
MAIL_USER = "mail"
ASSETS = Path(__file__).parent / "mail_assets"
POSTFIX_SBIN = Path("/usr/lib/postfix/sbin")
DOVECOT = Path("/usr/sbin/dovecot")
POSTFIX = Path("/usr/sbin/postfix")


def _ssha512(password: str) -> str:
    """Dovecot's {SSHA512} scheme: base64(sha512(password + salt) + salt)."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


def _cmdline(pid: int) -> str:
    """The command line of a live process ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _render(template: str, values: dict[str, str]) -> str:
    """Fill @@NAME@@ placeholders (both config syntaxes use $ and %, so str.format/Template won't do)."""
    text = (ASSETS / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise RuntimeError(f"unfilled placeholder left in {template}")
    return text


class MailServer(Server):
    """Dovecot IMAP on 127.0.0.1:28143 and Postfix SMTP on 127.0.0.1:28025 with test mailboxes."""

    name = "mail"
    version = "debian"
    start_timeout = 60.0

    # --- layout -----------------------------------------------------------------------------------
    @property
    def postfix_pid_file(self) -> Path:
        return self.state / "postfix.pid"

    @property
    def postfix_log_file(self) -> Path:
        return self.state / "postfix.log"

    @property
    def _postfix_conf(self) -> Path:
        return self.data_dir / "postfix-conf"

    @property
    def _dovecot_conf(self) -> Path:
        return self.data_dir / "dovecot-conf" / "dovecot.conf"

    @property
    def _lmtp_socket(self) -> Path:
        return self.data_dir / "dovecot-run" / "lmtp-postfix"

    # --- Server hooks -----------------------------------------------------------------------------
    def obtain(self) -> None:
        if DOVECOT.exists() and (POSTFIX_SBIN / "master").exists() and self._has_lmtp():
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        # "No configuration": Debian's postinst then leaves /etc/postfix without a main.cf
        subprocess.run(
            ["debconf-set-selections"],
            input=b"postfix postfix/main_mailer_type select No configuration\n",
            check=True,
        )
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "dovecot-imapd", "dovecot-lmtpd", "postfix"],
            check=True,
            env=env,
        )

    @staticmethod
    def _has_lmtp() -> bool:
        return Path("/usr/lib/dovecot/lmtp").exists()

    def prepare(self) -> Launch:
        """Write both configs; return Dovecot's launch (Postfix's comes from _postfix_launch)."""
        if os.geteuid() != 0:
            raise ServerStartError("the mail server needs root: Postfix's master only runs as root")
        mail = pwd.getpwnam(MAIL_USER)
        mail_root = self.data_dir / "mailboxes"
        mail_root.mkdir()
        os.chown(mail_root, mail.pw_uid, mail.pw_gid)

        dovecot_dir = self._dovecot_conf.parent
        dovecot_dir.mkdir()
        passwd_file = dovecot_dir / "users"
        passwd_file.write_text("".join(f"{a}:{_ssha512(p)}\n" for a, p in MAILBOXES.items()))
        passwd_file.chmod(0o600)
        # Dovecot's auth process reads it as the dovecot user, not as root
        shutil.chown(passwd_file, "dovecot", "dovecot")
        self._dovecot_conf.write_text(
            _render(
                "dovecot.conf",
                {
                    "BASE_DIR": str(self._lmtp_socket.parent),
                    "STATE_DIR": str(self.data_dir / "dovecot-state"),
                    "MAIL_UID": str(mail.pw_uid),
                    "MAIL_GID": str(mail.pw_gid),
                    "PASSWD_FILE": str(passwd_file),
                    "MAIL_ROOT": str(mail_root),
                    "IMAP_PORT": str(IMAP_PORT),
                    "LMTP_NAME": self._lmtp_socket.name,
                },
            )
        )

        conf = self._postfix_conf
        conf.mkdir()
        mailbox_map = conf / "vmailbox"
        mailbox_map.write_text("".join(f"{a} OK\n" for a in MAILBOXES))
        (conf / "main.cf").write_text(
            _render(
                "postfix-main.conf",
                {
                    "QUEUE_DIR": str(self.data_dir / "postfix-queue"),
                    "DATA_DIR": str(self.data_dir / "postfix-data"),
                    "DOMAINS": DOMAIN,
                    "MAILBOX_MAP": str(mailbox_map),
                    "LMTP_SOCKET": str(self._lmtp_socket),
                },
            )
        )
        master_cf = _render("postfix-master.conf", {"SMTP_LISTEN": f"{HOST}:{SMTP_PORT}"})
        (conf / "master.cf").write_text(master_cf)
        # Postfix's own data folder must belong to its mail_owner
        (self.data_dir / "postfix-queue").mkdir()  # postfix creates the queue's subfolders itself
        pf_data = self.data_dir / "postfix-data"
        pf_data.mkdir()
        shutil.chown(pf_data, "postfix", "postfix")
        return Launch(argv=[str(DOVECOT), "-F", "-c", str(self._dovecot_conf)])

    def _postfix_launch(self) -> Launch:
        # start-fg runs the checks (creating the queue folders) and keeps master in the foreground
        return Launch(argv=[str(POSTFIX), "-c", str(self._postfix_conf), "start-fg"])

    def _postfix_master_pid(self) -> int | None:
        """The master daemon's PID from its own pid file in the queue folder."""
        try:
            text = (self.data_dir / "postfix-queue" / "pid" / "master.pid").read_text()
            return int(text.split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def healthy(self) -> bool:
        return self._imap_healthy() and self._smtp_healthy()

    def _imap_healthy(self) -> bool:
        user, password = next(iter(MAILBOXES.items()))
        with imaplib.IMAP4(HOST, IMAP_PORT, timeout=3) as imap:
            imap.login(user, password)
            status, _ = imap.noop()
            imap.logout()
        return status == "OK"

    def _smtp_healthy(self) -> bool:
        with smtplib.SMTP(HOST, SMTP_PORT, timeout=3) as smtp:
            code, _ = smtp.ehlo("health.casestream.test")
            noop, _ = smtp.noop()
        return code == 250 and noop == 250

    def info(self) -> dict[str, str]:
        return {
            "smtp_host": HOST,
            "smtp_port": str(SMTP_PORT),
            "imap_host": HOST,
            "imap_port": str(IMAP_PORT),
            "domain": DOMAIN,
            "mailboxes": ",".join(MAILBOXES),
        }

    # --- two processes: override the single-PID lifecycle -----------------------------------------
    def pids(self) -> dict[str, int | None]:
        """PID of each of the two processes (None when not running)."""
        return {"dovecot": read_pid(self.pid_file), "postfix": read_pid(self.postfix_pid_file)}

    def pid(self) -> int | None:
        """Dovecot's PID when both run, else whichever one still runs (so stale halves get noticed)."""
        pids = self.pids()
        return pids["dovecot"] or pids["postfix"]

    def running(self) -> bool:
        pids = self.pids()
        if pids["dovecot"] is None or pids["postfix"] is None:
            return False
        try:
            return self.healthy()
        except Exception:
            return False

    def up(self, keep_data: bool = False) -> bool:
        """Start Dovecot, then Postfix; return True when this call started them. (always fresh: keep_data is
        not supported here)"""
        if self.running():
            return False
        self.down()  # a half-running pair from a crash is stopped before a fresh start
        busy = [p for p in (IMAP_PORT, SMTP_PORT) if port_open(p)]
        if busy:
            raise ServerStartError(f"mail: port(s) {busy} already in use by a process we did not start")
        self.obtain()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)
        for log in (self.log_file, self.postfix_log_file):
            log.unlink(missing_ok=True)
        dovecot = self.prepare()
        try:
            dpid = spawn(dovecot.argv, log_file=self.log_file, pid_file=self.pid_file)
            wait_healthy(
                self._imap_healthy,
                pid=dpid,
                log_file=self.log_file,
                name="mail (dovecot)",
                timeout=self.start_timeout,
            )
            postfix = self._postfix_launch()
            ppid = spawn(postfix.argv, log_file=self.postfix_log_file, pid_file=self.postfix_pid_file)
            wait_healthy(
                self._smtp_healthy,
                pid=ppid,
                log_file=self.postfix_log_file,
                name="mail (postfix)",
                timeout=self.start_timeout,
            )
            # master calls setsid(), leaving the start-fg script's process group: track master itself
            master = self._postfix_master_pid()
            if master is None:
                raise ServerStartError(f"postfix master.pid not found.\n{self.logs()}")
            self.postfix_pid_file.write_text(str(master))
        except BaseException:
            self.down()
            raise
        return True

    def down(self) -> None:
        """Stop Postfix, then Dovecot, each by its own PID (and process group)."""
        # master setsid()s away from the start-fg script: stop it by the PID it recorded itself too,
        # which matters when start-up failed before its PID was copied into our pid file
        master = self._postfix_master_pid()
        if master is not None and "postfix/sbin/master" in _cmdline(master):
            stop_pid(master)
        for pid_file in (self.postfix_pid_file, self.pid_file):
            pid = read_pid(pid_file)
            if pid is not None:
                stop_pid(pid)
            pid_file.unlink(missing_ok=True)

    def logs(self, lines: int = 60) -> str:
        return (
            f"--- dovecot ---\n{log_tail(self.log_file, lines)}\n"
            f"--- postfix ---\n{log_tail(self.postfix_log_file, lines)}"
        )

    # --- helpers for tests and the product's mail adapters ----------------------------------------
    def deliver(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        sender: str = f"noreply@{DOMAIN}",
        headers: dict[str, str] | None = None,
    ) -> str:
        """Send one plain-text message through Postfix's SMTP port; return its Message-ID."""
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
        for key, value in (headers or {}).items():
            msg[key] = value
        msg.set_content(body)
        with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as smtp:
            smtp.send_message(msg)
        return str(msg["Message-ID"])

    def read_mailbox(self, user: str, password: str, mailbox: str = "INBOX") -> list[EmailMessage]:
        """Every message in a mailbox over IMAP, parsed (oldest first)."""
        messages: list[EmailMessage] = []
        with imaplib.IMAP4(HOST, IMAP_PORT, timeout=10) as imap:
            imap.login(user, password)
            imap.select(mailbox, readonly=True)
            status, data = imap.search(None, "ALL")
            if status != "OK":
                raise RuntimeError(f"IMAP SEARCH failed: {data!r}")
            for num in data[0].split():
                status, parts = imap.fetch(num.decode(), "(BODY.PEEK[])")
                raw = next(p[1] for p in parts if isinstance(p, tuple))
                parsed = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                messages.append(parsed)
            imap.logout()
        return messages

    def wait_for_message(
        self, user: str, password: str, message_id: str, timeout: float = 30.0
    ) -> EmailMessage:
        """Poll the INBOX until the message with this Message-ID arrives (delivery is asynchronous)."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.read_mailbox(user, password):
                if msg["Message-ID"] == message_id:
                    return msg
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{message_id} not in {user}'s INBOX after {timeout:.0f}s.\n{self.logs(30)}"
                )
            time.sleep(0.2)
