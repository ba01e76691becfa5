"""A real Dovecot IMAP server on 127.0.0.1, in a temporary folder of its own, for the mailbox tests.

Dovecot (Debian's ``dovecot-imapd``) runs as a daemon with a configuration written here; any
user name logs in with the one password, and each test takes a user of its own, so each test
starts from an empty mailbox. As root Dovecot needs unprivileged users for its processes
(``dovecot`` and ``dovenull``, made by the Debian package); as another user it runs as that user.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from imap_tools import MailBoxUnencrypted

from tests.servers.smtp_server import write_self_signed_certificate

__all__ = ["DOVECOT_MISSING", "DovecotServer", "ImapAccount", "dovecot_binary"]

PASSWORD = "secret-imap"
DOVECOT_MISSING = (
    "Dovecot absent : tests IMAP sautés (apt-get install -y dovecot-imapd ; .ci/run l'installe)"
)


def dovecot_binary() -> str | None:
    """Return the path of ``dovecot``, or None when it is not installed."""
    return shutil.which("dovecot") or next(
        (path for path in ("/usr/sbin/dovecot",) if os.access(path, os.X_OK)), None
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ImapAccount:
    """One user's mailbox on the test server: where to log in, and helpers to look inside."""

    host: str
    port: int
    user: str
    password: str
    tls_port: int = 0  # IMAPS; the plain port also offers STARTTLS
    ca_file: Path | None = None  # the server's self-signed certificate, to trust it

    def _box(self) -> MailBoxUnencrypted:
        return MailBoxUnencrypted(self.host, self.port, timeout=10).login(
            self.user, self.password, initial_folder=None
        )

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver ``raw`` into ``folder`` (IMAP APPEND), as a mail server would."""
        with self._box() as box:
            box.append(raw, folder)

    def folders(self) -> dict[str, int]:
        """Return each folder (its decoded name, ``/``-separated) with how many mails it holds."""
        with self._box() as box:
            found = {}
            for info in box.folder.list():
                if "\\Noselect" in info.flags:
                    continue
                name = info.name.replace(info.delim, "/") if info.delim else info.name
                found[name] = box.folder.status(info.name, ["MESSAGES"])["MESSAGES"]
            return found

    def subjects(self, folder: str) -> list[str]:
        """Return the subjects of the mails in ``folder`` (``/``-separated), oldest first."""
        with self._box() as box:
            delim = box.folder.list()[0].delim or "/"
            box.folder.set(folder.replace("/", delim), readonly=True)
            return [mail.subject for mail in box.fetch(mark_seen=False)]


class DovecotServer:
    """``dovecot -c FILE`` started on a free port, stopped through its ``master.pid``."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.tls_port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="synergie-dovecot-"))
        self.certificate: Path | None = None

    def _config(self) -> Path:
        mail = self.root / "mail"
        mail.mkdir()
        base = self.root / "run"
        base.mkdir()
        (self.root / "state").mkdir()
        if os.geteuid() == 0:
            internal, login, owner = "dovecot", "dovenull", "dovecot"
            # Dovecot's unprivileged processes must reach their folders under the temp dir.
            self.root.chmod(0o755)
            shutil.chown(mail, user=owner, group=owner)
            valid = "first_valid_uid = 100"
        else:
            internal = login = owner = getpass.getuser()
            valid = f"first_valid_uid = {os.getuid()}"
        # A self-signed certificate for localhost and 127.0.0.1: IMAPS and STARTTLS are tested too.
        self.certificate, key = write_self_signed_certificate(self.root)
        config = self.root / "dovecot.conf"
        config.write_text(
            f"""\
protocols = imap
listen = {self.host}
base_dir = {base}
state_dir = {self.root / "state"}
instance_name = synergie-test-{self.port}
log_path = {self.root / "dovecot.log"}
ssl = yes
ssl_cert = <{self.certificate}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
{valid}
mail_location = maildir:{mail}/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={owner} gid={owner} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port}
  }}
}}
"""
        )
        return config

    def start(self) -> None:
        config = self._config()
        # Dovecot daemonises: its output goes to a file, never a pipe (the daemon keeps it open).
        output = self.root / "start.log"
        with output.open("wb") as sink:
            code = subprocess.call(
                [self.binary, "-c", str(config)], stdout=sink, stderr=sink, stdin=subprocess.DEVNULL,
                timeout=30,
            )  # fmt: skip
        if code != 0:
            text = output.read_text(errors="replace")
            shutil.rmtree(self.root, ignore_errors=True)
            raise RuntimeError(f"dovecot did not start: {text}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.1)
        log = (self.root / "dovecot.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"dovecot is not answering on port {self.port}: {log}")

    def stop(self) -> None:
        pid_file = self.root / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    def new_account(self) -> ImapAccount:
        """Return a fresh user: an empty mailbox of its own."""
        user = f"t{uuid.uuid4().hex[:12]}@example.org"
        return ImapAccount(self.host, self.port, user, PASSWORD, self.tls_port, self.certificate)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
