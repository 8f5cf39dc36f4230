"""A real Dovecot IMAP server for the inbox tests, started once per session.

    def test_x(imap_box):
        imap_box.append(raw)            # APPEND to this test's own mailbox
        imap_box.settings               # an [inbox.imap] section pointing at it
        imap_box.flags()                # {uid: {flags}} as the server has them
        dovecot.kill_imap_sessions()    # drop every client connection, server-side

``running(find_binary())`` starts one outside pytest (the inbound bench does).

Every test gets a mailbox of its own on the one server. Skipped with a clear message when
Dovecot is not installed (`apt-get install dovecot-imapd`); CI installs it.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nurtured.config_sections import Imap

USER = "nurture"
PASSWORD = "secret-for-tests"
PASSWORD_ENV = "NURTURED_TEST_IMAP_PASSWORD"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(root: Path, port: int, as_root: bool) -> str:
    if as_root:
        users = """
            mail_uid = nobody
            mail_gid = nogroup
            default_login_user = dovenull
            default_internal_user = dovecot
            default_internal_group = dovecot
        """
    else:
        me = pwd.getpwuid(os.getuid()).pw_name
        group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True)
        users = f"""
            mail_uid = {me}
            mail_gid = {group.stdout.strip()}
            default_login_user = {me}
            default_internal_user = {me}
            default_internal_group = {group.stdout.strip()}
        """
    return f"""
        protocols = imap
        listen = 127.0.0.1
        base_dir = {root}/run
        state_dir = {root}/state
        log_path = {root}/dovecot.log
        instance_name = nurtured-test-{port}
        disable_plaintext_auth = no
        ssl = no
        mail_location = maildir:{root}/mail/%u
        mail_fsync = never  # a throwaway server: no fsync per APPEND
        {users}
        passdb {{
          driver = passwd-file
          args = {root}/passwd
        }}
        userdb {{
          driver = passwd-file
          args = {root}/passwd
        }}
        service imap-login {{
          chroot =
          inet_listener imap {{
            address = 127.0.0.1
            port = {port}
          }}
          inet_listener imaps {{
            port = 0
          }}
        }}
        service anvil {{
          chroot =
        }}
        protocol imap {{
          imap_idle_notify_interval = 1 secs  # "still here" pushes: must be ignored
        }}
    """


@dataclass
class Dovecot:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    def connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def imap_pids(self) -> list[int]:
        """The imap processes (one per logged-in client) under this server's master."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            if comm == "imap" and ppid == self.process.pid:
                pids.append(int(entry.name))
        return pids

    def kill_imap_sessions(self) -> int:
        """SIGKILL every imap child: each client sees its connection drop."""
        pids = self.imap_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return len(pids)


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                greeting = sock.recv(512)
                if b"ready" in greeting.lower():
                    sock.sendall(b"a LOGOUT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("dovecot did not become ready in 15 s")


def find_binary() -> str | None:
    """The dovecot binary, or None when it is not installed."""
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )


@contextlib.contextmanager
def running(binary: str) -> Iterator[Dovecot]:
    """A Dovecot of its own (temporary config, maildirs and port) for as long as the block
    runs; also used by the inbound bench. Sets the password variable meanwhile."""
    as_root = os.getuid() == 0
    root = Path(tempfile.mkdtemp(prefix="nurtured-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:::::\n")
    if as_root:
        shutil.chown(root / "mail", "nobody", "nogroup")
    port = _free_port()
    conf = root / "dovecot.conf"
    conf.write_text("\n".join(line.strip() for line in _config(root, port, as_root).splitlines()))
    # Dovecot keeps the real clock, like any mail server: when the suite runs under a
    # faked clock (libfaketime, to prove it passes on any date), Dovecot's own timers
    # under the preloaded library stall its login and IMAP processes.
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}  # fmt: skip
    process = subprocess.Popen([binary, "-F", "-c", str(conf)], stderr=subprocess.PIPE, env=env)
    try:
        _wait_ready(port, process, root / "dovecot.log")
        os.environ[PASSWORD_ENV] = PASSWORD
        yield Dovecot(root, port, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
        os.environ.pop(PASSWORD_ENV, None)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    binary = find_binary()
    if binary is None:
        pytest.skip("Dovecot is not installed: apt-get install dovecot-imapd (CI installs it)")
    with running(binary) as server:
        yield server


@dataclass
class ImapBox:
    """One test's mailbox on the shared server."""

    server: Dovecot
    mailbox: str

    def settings(self, **overrides: object) -> Imap:
        values: dict[str, object] = {
            "host": "127.0.0.1", "port": self.server.port, "tls": "none", "username": USER,
            "password_env": PASSWORD_ENV, "mailbox": self.mailbox, "poll_interval": "30s",
            "timeout": "5s", **overrides,
        }  # fmt: skip
        return Imap.model_validate(values)

    def append(self, raw: bytes, mailbox: str | None = None) -> None:
        self.append_many([raw], mailbox)

    def append_many(self, raws: Iterable[bytes], mailbox: str | None = None) -> None:
        """APPEND each message, in order, over one connection."""
        client = self.server.connect()
        try:
            for raw in raws:
                status, data = client.append(mailbox or self.mailbox, None, None, raw)
                if status != "OK":
                    raise RuntimeError(f"APPEND refused: {data!r}")
        finally:
            client.logout()

    def flags(self, mailbox: str | None = None) -> dict[int, set[str]]:
        """UID -> flags of every message in the mailbox."""
        client = self.server.connect()
        try:
            status, _ = client.select(mailbox or self.mailbox, readonly=True)
            if status != "OK":  # not created yet
                return {}
            status, data = client.uid("FETCH", "1:*", "(FLAGS)")
            found: dict[int, set[str]] = {}
            for item in data:
                if not isinstance(item, bytes):
                    continue
                text = item.decode()
                if "UID " not in text:  # an unsolicited update from another session's STORE
                    continue
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                flags = text.split("FLAGS (")[1].split(")")[0].split()
                found[uid] = set(flags) - {"\\Recent"}
            return found
        finally:
            client.logout()


@pytest.fixture
def imap_box(dovecot: Dovecot) -> ImapBox:
    name = f"t{secrets.token_hex(4)}"
    client = dovecot.connect()
    try:
        client.create(name)
    finally:
        client.logout()
    return ImapBox(dovecot, name)
