"""The IMAP side of the mailbox, through imap-tools: log in, list what waits, fetch it, move it.

imap-tools encodes folder names in modified UTF-7 (« Synergie/À traiter »), uses UID MOVE
when the server has it (else COPY then delete of the original, which is still a move), and
works over IMAPS, STARTTLS or, for a server on this machine only, plain IMAP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted, MailMessage
from imap_tools.errors import MailboxFolderCreateError, MailboxLoginError, MailboxStarttlsError

from models.enums import MailOutcome
from synergie.settings import Settings

__all__ = [
    "FOLDERS",
    "FetchedMail",
    "ImapMailbox",
    "MailboxSettingsError",
    "check_imap_settings",
]

# Where each kind of mail goes, under SYNERGIE_IMAP_ARCHIVE (« Synergie » by default).
FOLDERS: dict[MailOutcome, str] = {
    MailOutcome.BOUNCED: "Rejets",
    MailOutcome.DELAYED: "Retards",
    MailOutcome.UNSUBSCRIBED: "Désinscriptions",
    MailOutcome.REPLIED: "Réponses",
    MailOutcome.AUTO_REPLY: "Réponses automatiques",
    MailOutcome.TO_REVIEW: "À traiter",
}


class MailboxSettingsError(RuntimeError):
    """The IMAP settings are missing or refused, or the server refused us; the message is in French."""


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """One mail waiting in the watched folder: its UID there and its bytes as the server holds them."""

    uid: int
    raw: bytes


class _RawMessage(MailMessage):
    """imap-tools' message, keeping the exact bytes (their digest is the mail's key)."""

    def __init__(self, fetch_data: list[Any]) -> None:
        super().__init__(fetch_data)
        self.raw: bytes = self._get_message_data_parts(fetch_data)[0] or b""


def _loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:
        return False


def check_imap_settings(settings: Settings, *, password: str | None) -> list[str]:
    """Return what is wrong with the IMAP settings, in French (empty when they are complete)."""
    problems = []
    if not settings.imap_host.strip():
        problems.append("SYNERGIE_IMAP_HOST (le serveur IMAP de la boîte qui reçoit les retours)")
    if not settings.imap_user.strip():
        problems.append("SYNERGIE_IMAP_USER (l'identifiant de la boîte)")
    if not password:
        problems.append(
            "SYNERGIE_IMAP_PASSWORD (ou un bloc Secret Prefect « synergie-imap-password »)"
        )
    if settings.imap_ca_file is not None and not settings.imap_ca_file.is_file():
        problems.append(f"SYNERGIE_IMAP_CA_FILE : fichier introuvable ({settings.imap_ca_file})")
    if (
        settings.imap_security == "none"
        and settings.imap_host
        and not _loopback(settings.imap_host)
    ):
        problems.append(
            "SYNERGIE_IMAP_SECURITY=none n'est permis que pour un serveur sur cette machine "
            "(127.0.0.1) : le mot de passe passerait en clair ; utilisez ssl ou starttls"
        )
    return problems


class ImapMailbox:
    """One session on the watched folder; use it as a context manager."""

    def __init__(self, settings: Settings, *, password: str) -> None:
        problems = check_imap_settings(settings, password=password)
        if problems:
            raise MailboxSettingsError("Boîte aux lettres mal configurée : " + " ; ".join(problems))
        self.settings = settings
        self.folder = settings.imap_folder
        self._password = password
        self._box: BaseMailBox | None = None
        self._delimiter = "/"
        self._uidvalidity = 0

    # -- session --

    def _tls(self) -> ssl.SSLContext:
        """Certificate and host name checked: against the system's CAs, or SYNERGIE_IMAP_CA_FILE's."""
        cafile = self.settings.imap_ca_file
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)

    def _client(self) -> BaseMailBox:
        settings = self.settings
        timeout = settings.imap_timeout
        if settings.imap_security == "ssl":
            return MailBox(
                settings.imap_host, settings.imap_port or 993, timeout=timeout,
                ssl_context=self._tls(),
            )  # fmt: skip
        if settings.imap_security == "starttls":
            return MailBoxStartTls(
                settings.imap_host, settings.imap_port or 143, timeout=timeout,
                ssl_context=self._tls(),
            )  # fmt: skip
        return MailBoxUnencrypted(settings.imap_host, settings.imap_port or 143, timeout=timeout)

    def __enter__(self) -> Self:
        where = f"{self.settings.imap_host}:{self.settings.imap_port or ''}".rstrip(":")
        try:
            box = self._client()
            box.email_message_class = _RawMessage  # type: ignore[assignment]
            box.login(self.settings.imap_user, self._password, initial_folder=None)
        except MailboxLoginError as exc:
            raise MailboxSettingsError(
                f"Le serveur IMAP {where} refuse l'identifiant ou le mot de passe "
                f"de {self.settings.imap_user} : vérifiez SYNERGIE_IMAP_USER et le mot de passe."
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise MailboxSettingsError(
                f"Le certificat du serveur IMAP {where} n'est pas reconnu ({exc.verify_message}) : "
                "vérifiez SYNERGIE_IMAP_HOST, ou donnez l'autorité qui l'a signé "
                "(SYNERGIE_IMAP_CA_FILE)."
            ) from exc
        except MailboxStarttlsError as exc:
            raise MailboxSettingsError(
                f"Le serveur IMAP {where} ne propose pas STARTTLS : essayez "
                "SYNERGIE_IMAP_SECURITY=ssl (port 993)."
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise MailboxSettingsError(
                f"Serveur IMAP {where} injoignable ({exc}) : vérifiez SYNERGIE_IMAP_HOST, "
                "SYNERGIE_IMAP_PORT et SYNERGIE_IMAP_SECURITY."
            ) from exc
        self._box = box
        listed = box.folder.list("", self.folder)
        if not listed:
            box.logout()
            raise MailboxSettingsError(
                f"Le dossier « {self.folder} » n'existe pas dans la boîte {self.settings.imap_user} "
                "(SYNERGIE_IMAP_FOLDER)."
            )
        self._delimiter = listed[0].delim or "/"
        box.folder.set(self.folder)
        self._uidvalidity = int(box.folder.status(self.folder, ["UIDVALIDITY"])["UIDVALIDITY"])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._box is not None:
            # The connection may be gone already: there is nothing left to save.
            with contextlib.suppress(Exception):
                self._box.logout()
            self._box = None

    @property
    def box(self) -> BaseMailBox:
        if self._box is None:
            raise RuntimeError("the IMAP session is not open: use ImapMailbox as a context manager")
        return self._box

    @property
    def uidvalidity(self) -> int:
        """The watched folder's UIDVALIDITY: with a UID, where a mail was."""
        return self._uidvalidity

    # -- work --

    def waiting(self) -> list[int]:
        """Return the UIDs of every mail in the watched folder, oldest first."""
        return sorted(int(uid) for uid in self.box.uids("ALL"))

    def fetch(self, uids: list[int]) -> Iterator[FetchedMail]:
        """Yield the mails with these UIDs, one at a time, without marking them seen."""
        for uid in uids:
            for message in self.box.fetch(uid_list=[str(uid)], mark_seen=False):
                yield FetchedMail(uid=uid, raw=getattr(message, "raw", b""))

    def folder_for(self, outcome: MailOutcome) -> str:
        """The server's name of the folder for ``outcome``, with its hierarchy delimiter."""
        return f"{self.settings.imap_archive}{self._delimiter}{FOLDERS[outcome]}"

    def ensure_folders(self) -> None:
        """Create (and subscribe to) the archive folders that do not exist yet."""
        wanted = [self.settings.imap_archive] + [self.folder_for(o) for o in MailOutcome]
        existing = {info.name for info in self.box.folder.list()}
        for name in wanted:
            if name in existing:
                continue
            try:
                self.box.folder.create(name)
            except MailboxFolderCreateError:
                # Created meanwhile by another run, or implied by its child: check, don't guess.
                if not self.box.folder.exists(name):
                    raise
            self.box.folder.subscribe(name, True)

    def move(self, uid: int, outcome: MailOutcome) -> str:
        """Move one mail to the folder of ``outcome`` (never deleted); return the folder's name."""
        target = self.folder_for(outcome)
        self.box.move([str(uid)], target)
        return target
