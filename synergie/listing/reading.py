"""Building a territory's company listing: read a CSV or SIRENE extract, validate, deduplicate, load.

The file is streamed: records are cut from raw byte lines, rows that cannot match the
commune filter are skipped before any CSV parsing or decoding, and accepted rows are
written in batches through SQLAlchemy Core upserts inside one transaction.
"""

from __future__ import annotations

import csv
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Literal

import phonenumbers
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.dialects import postgresql, sqlite
from stdnum.fr import siret as stdnum_siret

from models.db import DriverStatement
from models.enums import Source, Stage
from models.tables import Company, Contact

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
SNIFF_BYTES = 64 * 1024
# A record whose quotes are still open after this many physical lines is taken to be a
# stray quote, not a quoted newline, so one bad character cannot swallow the whole file.
MAX_LINES_PER_RECORD = 20
PROGRESS_EVERY_LINES = 20_000
FAST_BLOCK_BYTES = 4 * 1024 * 1024
MAX_CARRY_BYTES = 64 * 1024 * 1024
REJECTS_KEPT_IN_REPORT = 200

STAFF_BANDS: tuple[str, ...] = (
    "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53",
)  # fmt: skip
UNKNOWN_STAFF_BAND = "NN"
NAF_PATTERN = re.compile(r"^(\d{2})\.?(\d{2})([A-Z])$")
POSTCODE_PATTERN = re.compile(r"^\d{5}$")
COMMUNE_CODE_PATTERN = re.compile(r"^(\d{5}|2[AB]\d{3})$")
LEGAL_FORMS = frozenset(
    {"sarl", "sas", "sasu", "eurl", "sa", "sci", "scea", "earl", "gaec", "snc", "scop", "ets",
     "etablissements", "ste", "societe"}
)  # fmt: skip

# ARCEP sets these number blocks aside for fiction (films, examples, our sample territory);
# libphonenumber calls them invalid, we accept them so demos never reach a real person.
FICTION_NUMBER_PREFIXES = ("+33199", "+3326191", "+3335301", "+3346571", "+3353649", "+336399")

SIRENE_STREET_TYPES = {
    "ALL": "allée", "AV": "avenue", "BD": "boulevard", "CHE": "chemin", "CHEM": "chemin",
    "CRS": "cours", "IMP": "impasse", "LD": "lieu-dit", "PL": "place", "QUA": "quai",
    "QUAI": "quai", "RTE": "route", "RUE": "rue", "SQ": "square", "ZA": "ZA", "ZAC": "ZAC",
    "ZI": "ZI", "PAS": "passage", "RPT": "rond-point", "VOIE": "voie", "HAM": "hameau",
    "SEN": "sentier", "FG": "faubourg", "PRO": "promenade", "CAR": "carrefour",
}  # fmt: skip


class ListingKind(StrEnum):
    """The two file shapes we read."""

    SYNERGIE = "synergie"
    SIRENE = "sirene"


# Synergie's own CSV: canonical column → accepted header spellings (after normalise_header).
SYNERGIE_COLUMNS: dict[str, tuple[str, ...]] = {
    "siret": ("siret", "n_siret", "numero_siret", "no_siret"),
    "name": ("raison_sociale", "nom", "entreprise", "societe", "denomination", "nom_entreprise",
             "nom_de_l_entreprise", "etablissement"),
    "naf_code": ("code_naf", "naf", "ape", "code_ape", "code_naf_ape"),
    "staff_band": ("tranche_effectifs", "tranche_d_effectifs", "tranche_effectif", "effectifs"),
    "address": ("adresse", "adresse_postale", "rue"),
    "postcode": ("code_postal", "cp"),
    "commune": ("commune", "ville", "localite"),
    "commune_code": ("code_commune", "code_insee", "insee", "code_commune_insee"),
    "latitude": ("latitude", "lat"),
    "longitude": ("longitude", "lon", "lng"),
    "contact_name": ("contact_nom", "contact", "nom_du_contact", "interlocuteur", "dirigeant"),
    "contact_role": ("contact_fonction", "fonction", "poste", "qualite"),
    "email": ("courriel", "email", "e_mail", "mail", "adresse_mail", "adresse_e_mail",
              "adresse_electronique"),
    "phone": ("telephone", "tel", "portable", "mobile", "numero_de_telephone"),
}  # fmt: skip

SIRENE_REQUIRED = ("siret", "codeCommuneEtablissement", "etatAdministratifEtablissement")
SIRENE_COLUMNS = (
    "siret", "codeCommuneEtablissement", "activitePrincipaleEtablissement",
    "trancheEffectifsEtablissement", "etatAdministratifEtablissement",
    "denominationUsuelleEtablissement", "enseigne1Etablissement", "enseigne2Etablissement",
    "enseigne3Etablissement", "complementAdresseEtablissement", "numeroVoieEtablissement",
    "indiceRepetitionEtablissement", "typeVoieEtablissement", "libelleVoieEtablissement",
    "codePostalEtablissement", "libelleCommuneEtablissement",
)  # fmt: skip


class ListingFileError(Exception):
    """The file cannot be read as a listing at all; nothing was written. Message in French."""


@dataclass(frozen=True)
class ListingFilter:
    """Which rows of a listing to keep; an empty filter keeps every active site."""

    communes: frozenset[str] = frozenset()
    naf_prefixes: tuple[str, ...] = ()
    min_staff_band: str | None = None
    include_closed: bool = False

    def __post_init__(self) -> None:
        if self.min_staff_band is not None and self.min_staff_band not in STAFF_BANDS:
            raise ValueError(
                f"tranche d'effectifs minimale inconnue : {self.min_staff_band!r} "
                f"(codes INSEE : {', '.join(STAFF_BANDS)})"
            )
        bad = [code for code in self.communes if not COMMUNE_CODE_PATTERN.match(code)]
        if bad:
            raise ValueError(
                f"code commune INSEE invalide : {', '.join(sorted(bad))} (5 caractères, ex. 21464)"
            )


@dataclass(frozen=True)
class FileLayout:
    """How a listing file is written: its kind, encoding guess, delimiter and columns."""

    kind: ListingKind
    encoding: str
    delimiter: str
    header: tuple[str, ...]
    columns: dict[str, int]
    header_lines: int


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported: its line number in the file, why, and what it held."""

    line: int
    reason: str
    raw: str


@dataclass
class ImportReport:
    """What an import did, for the screen, the artifact and the tests."""

    path: str
    kind: ListingKind
    encoding: str
    delimiter: str
    dry_run: bool
    rows_read: int = 0
    accepted: int = 0
    filtered_out: int = 0
    created: int = 0
    updated: int = 0
    contacts_created: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    rejects_path: str | None = None
    seconds: float = 0.0

    @property
    def imported(self) -> int:
        return self.created + self.updated


ProgressCallback = Callable[[int, int], None]


# ── reading ────────────────────────────────────────────────────────────────────────────


def normalise_header(name: str) -> str:
    """Lower-case, accent-free, underscore-joined form of a header or name."""
    text = unicodedata.normalize("NFKD", name.strip().strip("\ufeff"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def _decode(raw: bytes) -> str:
    # Excel exports in cp1252; one file may even mix both when rows were pasted in.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def _open_binary(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise ListingFileError(f"fichier introuvable : {path}") from exc
    except IsADirectoryError as exc:
        raise ListingFileError(f"{path} est un dossier, pas un fichier CSV") from exc
    except PermissionError as exc:
        raise ListingFileError(f"lecture interdite : {path} (droits du fichier)") from exc


def detect_layout(path: Path) -> FileLayout:
    """Read the start of the file and tell its kind, encoding, delimiter and columns."""
    with _open_binary(path) as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise ListingFileError(f"le fichier {path.name} est vide")
    if b"\x00" in head:
        raise ListingFileError(
            f"{path.name} n'est pas un fichier texte CSV (classeur Excel .xlsx, UTF-16 ?) : "
            "enregistrez-le au format « CSV UTF-8 » ou « CSV (séparateur : point-virgule) »"
        )
    has_bom = head.startswith(b"\xef\xbb\xbf")
    try:
        head.decode("utf-8")
        encoding = "utf-8-sig" if has_bom else "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still UTF-8.
        encoding = "utf-8" if exc.start >= len(head) - 3 else "cp1252"
    lines = head.removeprefix(b"\xef\xbb\xbf").splitlines()
    header_index = next(i for i, line in enumerate(lines) if line.strip())
    header_text = _decode(lines[header_index])
    delimiter = max(";,\t|", key=header_text.count)
    if header_text.count(delimiter) == 0:
        raise ListingFileError(
            f"{path.name} : l'en-tête n'a qu'une colonne ({header_text[:60]!r}) ; "
            "séparez les colonnes par « ; » ou « , »"
        )
    header = tuple(
        h.strip().strip("\ufeff") for h in next(csv.reader([header_text], delimiter=delimiter))
    )
    if all(name in header for name in SIRENE_REQUIRED):
        columns = {name: header.index(name) for name in SIRENE_COLUMNS if name in header}
        kind = ListingKind.SIRENE
    else:
        columns = _synergie_columns(header, path)
        kind = ListingKind.SYNERGIE
    return FileLayout(kind, encoding, delimiter, header, columns, header_index + 1)


def _synergie_columns(header: Sequence[str], path: Path) -> dict[str, int]:
    spelled = {normalise_header(name): index for index, name in enumerate(header)}
    columns: dict[str, int] = {}
    for canonical, aliases in SYNERGIE_COLUMNS.items():
        for alias in aliases:
            if alias in spelled:
                columns[canonical] = spelled[alias]
                break
    if "name" not in columns and "siret" not in columns:
        raise ListingFileError(
            f"{path.name} : aucune colonne « raison_sociale » ni « siret » dans l'en-tête "
            f"({', '.join(header[:8])}) ; voir les colonnes attendues dans le README"
        )
    if "name" not in columns:
        raise ListingFileError(
            f"{path.name} : colonne « raison_sociale » (nom de l'entreprise) manquante"
        )
    return columns


def commune_pattern(communes: Iterable[str]) -> re.Pattern[bytes]:
    """A regex on raw bytes matching a commune code that ends a field (any line holding one as a field)."""
    codes = b"|".join(re.escape(code.encode()) for code in sorted(set(communes)))
    # A commune code is a whole field, so the match must end where a field ends. Only a
    # lookahead: a lookbehind would cost the regex its fast literal scan (10x slower).
    return re.compile(b"(?:" + codes + rb')(?=[,;"\t\r\n]|\Z)')


def commune_prefilter(communes: Iterable[str]) -> Callable[[bytes], bool] | None:
    """A cheap test on raw bytes that is true for every line that may hold one of the communes."""
    if not communes:
        return None
    search = commune_pattern(communes).search
    return lambda raw: search(raw) is not None


@dataclass
class ReadStats:
    """Counts kept while reading: every non-blank record, including those the prefilter skipped."""

    records: int = 0


def iter_records(
    handle: IO[bytes],
    *,
    skip_lines: int,
    prefilter: Callable[[bytes], bool] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stats: ReadStats | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield (first line number, raw record) for each non-blank record after the header.

    A record spans several physical lines when a quoted field holds a newline (an odd
    number of quotes so far). Records the prefilter rules out are skipped undecoded.
    """
    stats = stats if stats is not None else ReadStats()
    line_no = 0
    consumed = 0
    pending: list[bytes] = []
    pending_start = 0
    for line in handle:
        line_no += 1
        consumed += len(line)
        if line_no <= skip_lines:
            continue
        if on_bytes is not None and line_no % PROGRESS_EVERY_LINES == 0:
            on_bytes(consumed)
        if pending:
            pending.append(line)
            record = b"".join(pending)
            if record.count(b'"') % 2 == 0:
                pending = []
                stats.records += 1
                if prefilter is None or prefilter(record):
                    yield pending_start, record
            elif len(pending) >= MAX_LINES_PER_RECORD:
                # Not a quoted newline after all: give the first line back alone and
                # re-read the others as records of their own.
                first, rest = pending[0], pending[1:]
                pending = []
                stats.records += 1
                if prefilter is None or prefilter(first):
                    yield pending_start, first
                yield from _reread(rest, pending_start + 1, prefilter, stats)
            continue
        if line.count(b'"') % 2:
            pending = [line]
            pending_start = line_no
            continue
        if not line.strip():
            continue
        stats.records += 1
        if prefilter is None or prefilter(line):
            yield line_no, line
    if pending:
        yield from _reread(pending, pending_start, prefilter, stats)
    if on_bytes is not None:
        on_bytes(consumed)


def _reread(
    lines: list[bytes], start: int, prefilter: Callable[[bytes], bool] | None, stats: ReadStats
) -> Iterator[tuple[int, bytes]]:
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        stats.records += 1
        if prefilter is None or prefilter(line):
            yield start + offset, line


ScanMode = Literal["lines", "parity", "plain"]
"""How records are found: matching lines alone, matching records by quote parity, every line."""


class ParityLost(Exception):
    """The quote count no longer tells where records start (a stray quote): read line by line."""


def iter_matching_records(
    handle: IO[bytes],
    *,
    skip_lines: int,
    pattern: re.Pattern[bytes],
    record_fits: Callable[[bytes], bool] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stats: ReadStats | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield (first line number, raw record) for the records holding a ``pattern`` match.

    The fast path for a filtered SIRENE extract: the file is scanned in large blocks
    with one regex search, and only the records around a match are cut out, so the
    99% of rows outside the territory cost no Python work at all. A record starts
    where the number of quotes since the start of the file is even; when a stray quote
    breaks that rule the caller learns it (ParityLost, from the parser's column count
    or an endless record) and reads the file line by line instead.
    ``stats.records`` counts physical lines here (quoted newlines included).
    """
    stats = stats if stats is not None else ReadStats()
    line_base = 0
    consumed = 0
    for _ in range(skip_lines):
        consumed += len(handle.readline())
        line_base += 1
    carry = b""
    while True:
        block = handle.read(FAST_BLOCK_BYTES)
        consumed += len(block)
        buffer = carry + block
        final = not block
        limit = len(buffer) if final else buffer.rfind(b"\n") + 1
        if record_fits is not None:
            cut, newlines = yield from _scan_lines(
                buffer, limit, pattern, line_base, final, record_fits
            )
        else:
            cut, newlines = yield from _scan_block(buffer, limit, pattern, line_base, final)
        carry = buffer[cut:]
        if len(carry) > MAX_CARRY_BYTES:
            raise ParityLost
        stats.records += newlines
        line_base += newlines
        if on_bytes is not None:
            on_bytes(consumed - len(carry))
        if final:
            stats.records += 1 if buffer and not buffer.endswith(b"\n") else 0
            return


def _scan_lines(
    buffer: bytes,
    limit: int,
    pattern: re.Pattern[bytes],
    line_base: int,
    final: bool,
    record_fits: Callable[[bytes], bool],
) -> Generator[tuple[int, bytes], None, tuple[int, int]]:
    """Like ``_scan_block`` but without counting every quote of the file.

    A matching line with balanced quotes is taken as a record of its own (the parser's
    column count checks it later). When its quotes do not balance, the record spans
    lines: it is rebuilt around the match, forward then backward, and kept only if
    ``record_fits`` (the file's column count) says so; otherwise ParityLost sends the
    caller back to the parity scan.
    """
    pos, line_no, last_end = 0, line_base + 1, 0
    count, rfind, find = buffer.count, buffer.rfind, buffer.find
    for match in pattern.finditer(buffer, 0, limit):
        if match.start() < last_end:
            continue
        start = rfind(b"\n", 0, match.start()) + 1
        line_no += count(b"\n", pos, start)
        pos = start
        end = find(b"\n", match.end(), limit) + 1 or limit
        first_line = line_no
        if count(b'"', start, end) & 1:
            spanned = _rebuild(buffer, start, end, limit, last_end, final, record_fits)
            if spanned is None:  # the record goes on in the next block
                return start, line_no - line_base - 1
            start, end = spanned
            first_line = line_no - count(b"\n", start, pos)
        if buffer[start:end].strip():
            yield first_line, buffer[start:end]
        last_end = end
    return limit, line_no - line_base - 1 + count(b"\n", pos, limit)


def _rebuild(
    buffer: bytes,
    start: int,
    end: int,
    limit: int,
    floor: int,
    final: bool,
    record_fits: Callable[[bytes], bool],
) -> tuple[int, int] | None:
    """The bounds of the multi-line record holding the line [start, end), or None to wait for more data."""
    count, rfind, find = buffer.count, buffer.rfind, buffer.find
    # Forward: this line opens a quoted field that closes below.
    stop = end
    for _ in range(MAX_LINES_PER_RECORD):
        if stop >= limit:
            if not final:
                return None
            break
        stop = find(b"\n", stop, limit) + 1 or limit
        if not count(b'"', start, stop) & 1:
            if record_fits(buffer[start:stop]):
                return start, stop
            break
    # Backward: this line closes a quoted field opened above.
    begin = start
    for _ in range(MAX_LINES_PER_RECORD):
        if begin <= floor:
            break
        begin = rfind(b"\n", floor, begin - 1) + 1
        if not count(b'"', begin, end) & 1:
            if record_fits(buffer[begin:end]):
                return begin, end
            break
    raise ParityLost


def _scan_block(
    buffer: bytes, limit: int, pattern: re.Pattern[bytes], line_base: int, final: bool
) -> Generator[tuple[int, bytes], None, tuple[int, int]]:
    """Yield the complete records around matches in buffer[:limit].

    Returns where the next block must start (after the last complete record) and how
    many newlines lie before that point. Invariant: ``odd`` is the parity of quotes in
    buffer[:pos] and ``line_no`` the line number at ``pos``.
    """
    pos, odd, line_no, last_end = 0, 0, line_base + 1, 0
    count, rfind, find = buffer.count, buffer.rfind, buffer.find
    for match in pattern.finditer(buffer, 0, limit):
        if match.start() < last_end:
            continue
        start = rfind(b"\n", 0, match.start()) + 1
        odd ^= count(b'"', pos, start) & 1
        line_no += count(b"\n", pos, start)
        pos = start
        steps = 0
        while odd:  # this line continues a quoted field: the record began above
            previous = rfind(b"\n", 0, start - 1) + 1
            odd ^= count(b'"', previous, start) & 1
            line_no -= 1
            start = pos = previous
            steps += 1
            if steps > MAX_LINES_PER_RECORD:
                raise ParityLost
        end = find(b"\n", match.end(), limit) + 1 or limit
        steps = 0
        while count(b'"', start, end) & 1:
            if end >= limit:
                if final:
                    raise ParityLost
                return start, line_no - line_base - 1  # finish this record with the next block
            end = find(b"\n", end, limit) + 1 or limit
            steps += 1
            if steps > MAX_LINES_PER_RECORD:
                raise ParityLost
        if buffer[start:end].strip():
            yield line_no, buffer[start:end]
        last_end = end
    # Cut after the last newline that ends a record (outside quotes).
    odd ^= count(b'"', pos, limit) & 1
    newlines = line_no - line_base - 1 + count(b"\n", pos, limit)
    cut, steps = limit, 0
    while odd:
        if final or steps > MAX_LINES_PER_RECORD:
            raise ParityLost
        previous = rfind(b"\n", 0, cut - 1) + 1
        odd ^= count(b'"', previous, cut) & 1
        newlines -= 1
        cut = previous
        steps += 1
    return cut, newlines


# ── validating ─────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ListingRow:
    """One validated row: the company's fields and, when the row names one, its contact."""

    line: int
    company: dict[str, Any]
    contact: dict[str, Any] | None


class RowRejected(ValueError):
    """A row that cannot be imported; the message is the French reason shown to staff."""


class RowFilteredOut(Exception):
    """A valid row outside the filters (commune, NAF, staff band, closed site)."""


def name_key(name: str) -> str:
    """The form of a company name used to find it again: no accents, case, punctuation or legal form."""
    words = normalise_header(name).split("_")
    kept = [word for word in words if word and word not in LEGAL_FORMS]
    return " ".join(kept or words)


def clean_siret(value: str) -> str | None:
    """Return the 14-digit SIRET, or None when empty; raise RowRejected when it is wrong."""
    text = value.strip()
    if not text:
        return None
    if re.search(r"[eE][+]\d", text):
        raise RowRejected(
            f"SIRET illisible « {text} » : Excel l'a converti en nombre scientifique ; "
            "formatez la colonne en texte avant l'export"
        )
    digits = re.sub(r"[\s.\-]", "", text)
    if digits.isdigit() and len(digits) == 13:
        digits = "0" + digits  # Excel drops a leading zero
    try:
        return str(stdnum_siret.validate(digits))
    except Exception as exc:  # stdnum raises its own ValidationError family
        raise RowRejected(f"SIRET invalide « {text} » (14 chiffres, clé de Luhn)") from exc


def clean_email(value: str) -> str | None:
    """Return the normalised e-mail address, or None when empty; RowRejected when malformed."""
    text = value.strip()
    if not text:
        return None
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise RowRejected(f"adresse e-mail invalide « {text} »") from exc


def clean_phone(value: str) -> str | None:
    """Return the phone number in E.164, or None when empty; RowRejected when it is not a number."""
    text = value.strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, "FR")
    except phonenumbers.NumberParseException as exc:
        raise RowRejected(f"numéro de téléphone illisible « {text} »") from exc
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(number) or e164.startswith(FICTION_NUMBER_PREFIXES):
        return e164
    raise RowRejected(f"numéro de téléphone invalide « {text} »")


def clean_naf(value: str) -> str | None:
    """Return the NAF code as ``NN.NNL``, or None when empty."""
    text = value.strip().upper().replace(" ", "")
    if not text:
        return None
    match = NAF_PATTERN.match(text)
    if not match:
        raise RowRejected(f"code NAF invalide « {value.strip()} » (format 10.71C)")
    return f"{match[1]}.{match[2]}{match[3]}"


def clean_staff_band(value: str) -> str | None:
    """Return the INSEE staff band code, or None when empty."""
    text = value.strip().upper()
    if not text:
        return None
    if text.isdigit() and len(text) == 1:
        text = "0" + text
    if text in STAFF_BANDS or text == UNKNOWN_STAFF_BAND:
        return text
    raise RowRejected(
        f"tranche d'effectifs inconnue « {value.strip()} » (codes INSEE : NN, {', '.join(STAFF_BANDS)})"
    )


def _clean_code(value: str, pattern: re.Pattern[str], label: str, example: str) -> str | None:
    text = re.sub(r"\s", "", value).upper()
    if not text:
        return None
    if text.isdigit() and len(text) == 4:
        text = "0" + text  # Excel drops the leading zero of Ain, Aisne… codes
    if not pattern.match(text):
        raise RowRejected(f"{label} invalide « {value.strip()} » (ex. {example})")
    return text


def _clean_coordinate(value: str, label: str, bound: float) -> float | None:
    text = value.strip().replace(",", ".")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError as exc:
        raise RowRejected(f"{label} illisible « {value.strip()} »") from exc
    if not -bound <= number <= bound:
        raise RowRejected(f"{label} hors limites « {value.strip()} »")
    return number


def _text(value: str, limit: int) -> str | None:
    # Collapse CR/LF and runs of spaces: names end up in e-mail headers and tables.
    text = " ".join(value.split())
    return text[:limit] or None


def _passes(
    listing_filter: ListingFilter, commune_code: str | None, naf: str | None, band: str | None
) -> bool:
    if listing_filter.communes and commune_code not in listing_filter.communes:
        return False
    if listing_filter.naf_prefixes:
        compact = (naf or "").replace(".", "")
        if not any(
            compact.startswith(p.replace(".", "").upper()) for p in listing_filter.naf_prefixes
        ):
            return False
    if listing_filter.min_staff_band is not None:
        if band not in STAFF_BANDS:
            return False
        if STAFF_BANDS.index(band) < STAFF_BANDS.index(listing_filter.min_staff_band):
            return False
    return True


def validate_synergie_row(
    fields: list[str], columns: dict[str, int], listing_filter: ListingFilter, line: int
) -> ListingRow:
    """Turn one row of Synergie's CSV into a ListingRow, or raise RowRejected / RowFilteredOut."""

    def get(name: str) -> str:
        index = columns.get(name)
        return fields[index] if index is not None and index < len(fields) else ""

    name = _text(get("name"), 300)
    if not name:
        raise RowRejected("raison sociale manquante")
    siret = clean_siret(get("siret"))
    postcode = _clean_code(get("postcode"), POSTCODE_PATTERN, "code postal", "21700")
    if siret is None and postcode is None:
        raise RowRejected(
            "ni SIRET ni code postal : impossible de reconnaître l'entreprise à la prochaine importation"
        )
    commune_code = _clean_code(
        get("commune_code"), COMMUNE_CODE_PATTERN, "code commune INSEE", "21464"
    )
    naf = clean_naf(get("naf_code"))
    band = clean_staff_band(get("staff_band"))
    company = {
        "siret": siret,
        "name": name,
        "name_key": name_key(name),
        "naf_code": naf,
        "staff_band": band,
        "address": _text(get("address"), 500),
        "postcode": postcode,
        "commune": _text(get("commune"), 200),
        "commune_code": commune_code,
        "latitude": _clean_coordinate(get("latitude"), "latitude", 90),
        "longitude": _clean_coordinate(get("longitude"), "longitude", 180),
    }
    contact = _contact(get("contact_name"), get("contact_role"), get("email"), get("phone"))
    if not _passes(listing_filter, commune_code, naf, band):
        raise RowFilteredOut
    return ListingRow(line, company, contact)


def validate_sirene_row(
    fields: list[str], columns: dict[str, int], listing_filter: ListingFilter, line: int
) -> ListingRow:
    """Turn one row of SIRENE's StockEtablissement into a ListingRow, or raise RowRejected / RowFilteredOut."""

    def get(name: str) -> str:
        index = columns.get(name)
        return fields[index].strip() if index is not None and index < len(fields) else ""

    if len(fields) <= max(columns.values()):
        raise RowRejected(f"ligne incomplète : {len(fields)} colonnes seulement")
    if get("etatAdministratifEtablissement") != "A" and not listing_filter.include_closed:
        raise RowFilteredOut
    commune_code = get("codeCommuneEtablissement") or None
    naf = get("activitePrincipaleEtablissement") or None
    band = get("trancheEffectifsEtablissement") or None
    if not _passes(listing_filter, commune_code, (naf or "").upper(), band):
        raise RowFilteredOut
    name = next(
        (
            value
            for value in (
                get("denominationUsuelleEtablissement"),
                get("enseigne1Etablissement"),
                get("enseigne2Etablissement"),
                get("enseigne3Etablissement"),
            )
            if value
        ),
        "",
    )
    if not name:
        raise RowRejected(
            "établissement sans dénomination usuelle ni enseigne : complétez le nom depuis "
            "le fichier des unités légales (StockUniteLegale)"
        )
    siret = clean_siret(get("siret"))
    if siret is None:
        raise RowRejected("SIRET manquant")
    street_type = get("typeVoieEtablissement")
    street = " ".join(
        part
        for part in (
            get("numeroVoieEtablissement") + get("indiceRepetitionEtablissement").lower(),
            SIRENE_STREET_TYPES.get(street_type.upper(), street_type.lower()),
            get("libelleVoieEtablissement"),
        )
        if part
    )
    address = ", ".join(part for part in (get("complementAdresseEtablissement"), street) if part)
    company = {
        "siret": siret,
        "name": _text(name, 300),
        "name_key": name_key(name),
        "naf_code": clean_naf(naf or ""),
        "staff_band": clean_staff_band(band or ""),
        "address": _text(address, 500),
        "postcode": _clean_code(
            get("codePostalEtablissement"), POSTCODE_PATTERN, "code postal", "21700"
        ),
        "commune": _text(get("libelleCommuneEtablissement"), 200),
        "commune_code": _clean_code(
            commune_code or "", COMMUNE_CODE_PATTERN, "code commune INSEE", "21464"
        ),
        "latitude": None,
        "longitude": None,
    }
    return ListingRow(line, company, None)


def _contact(name: str, role: str, email: str, phone: str) -> dict[str, Any] | None:
    clean_name = _text(name, 200)
    clean_mail = clean_email(email)
    clean_tel = clean_phone(phone)
    if clean_mail:
        identity = f"email:{clean_mail}"
    elif clean_tel:
        identity = f"phone:{clean_tel}"
    elif clean_name:
        identity = f"name:{name_key(clean_name)}"
    else:
        return None
    return {
        "identity": identity,
        "name": clean_name,
        "role": _text(role, 200),
        "email": clean_mail,
        "phone": clean_tel,
    }


# ── loading ────────────────────────────────────────────────────────────────────────────


def _upsert(dialect: str) -> Callable[..., Any]:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _company_key(company: dict[str, Any]) -> tuple[str, ...]:
    if company["siret"]:
        return ("siret", company["siret"])
    return ("name", company["name_key"], company["postcode"])


INSERTED = ("siret", "name", "name_key", "naf_code", "staff_band", "address", "postcode",
            "commune", "commune_code", "latitude", "longitude")  # fmt: skip
UPDATABLE = ("name", "naf_code", "staff_band", "address", "postcode", "commune", "commune_code",
             "latitude", "longitude")  # fmt: skip


class ListingLoader:
    """Writes validated rows to the database in batches, in the caller's transaction."""

    def __init__(
        self, connection: sa.Connection, *, source: Source, now: datetime, dry_run: bool
    ) -> None:
        self.connection = connection
        self.source = source
        self.now = now
        self.dry_run = dry_run
        self.created = 0
        self.updated = 0
        self.contacts_created = 0
        self._insert = _upsert(connection.dialect.name)
        self._upserts: dict[tuple[str, ...], DriverStatement] = {}
        self._company = Company.__table__  # type: ignore[attr-defined]
        self._contact = Contact.__table__  # type: ignore[attr-defined]

    def load(self, rows: list[ListingRow]) -> None:
        """Upsert one batch of companies and their contacts."""
        companies: dict[tuple[str, ...], dict[str, Any]] = {}
        contacts: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {}
        for row in rows:
            key = _company_key(row.company)
            previous = companies.get(key)
            # The same company twice in one file: later non-empty values win.
            companies[key] = (
                {**previous, **{k: v for k, v in row.company.items() if v is not None}}
                if previous
                else dict(row.company)
            )
            if row.contact:
                contacts.setdefault(key, {})[row.contact["identity"]] = row.contact
        existing = self._existing_ids(list(companies))
        self.created += sum(1 for key in companies if key not in existing)
        self.updated += sum(1 for key in companies if key in existing)
        if self.dry_run:
            return
        with_siret = [c for k, c in companies.items() if k[0] == "siret"]
        without = [c for k, c in companies.items() if k[0] == "name"]
        if with_siret:
            self._upsert_companies(with_siret, ["siret"], None)
        if without:
            self._upsert_companies(
                without, ["name_key", "postcode"], self._company.c.siret.is_(None)
            )
        if contacts:
            ids = self._existing_ids(list(contacts))
            self._upsert_contacts(
                [
                    {
                        **contact,
                        "company_id": ids[key],
                        "created_at": self.now,
                        "public_id": uuid.uuid4().hex,
                    }
                    for key, by_identity in contacts.items()
                    for contact in by_identity.values()
                ]
            )

    def _existing_ids(self, keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
        table = self._company
        found: dict[tuple[str, ...], int] = {}
        sirets = [key[1] for key in keys if key[0] == "siret"]
        if sirets:
            # Plain SQL to the driver: building and binding a 1,000-value IN through
            # SQLAlchemy cost a fifth of a bulk load.
            mark = "?" if self.connection.dialect.paramstyle == "qmark" else "%s"
            sql = (
                f"SELECT id, siret FROM company WHERE siret IN ({', '.join([mark] * len(sirets))})"
            )
            for company_id, siret in self.connection.exec_driver_sql(sql, tuple(sirets)):
                found[("siret", siret)] = company_id
        names = [key for key in keys if key[0] == "name"]
        if names:
            query = sa.select(table.c.id, table.c.name_key, table.c.postcode).where(
                table.c.siret.is_(None), table.c.name_key.in_([key[1] for key in names])
            )
            for company_id, key_name, postcode in self.connection.execute(query):
                found[("name", key_name, postcode)] = company_id
        return found

    def _constant(self, value: Any, type_: Any) -> Any:
        # Rendered once into the statement: per-row bind processing of these constant
        # columns (enum and timestamp type decorators) cost more than SQLite's own work.
        rendered = sa.literal(value, type_).compile(
            dialect=self.connection.dialect, compile_kwargs={"literal_binds": True}
        )
        return sa.literal_column(str(rendered), type_)

    def _upsert_companies(
        self, companies: list[dict[str, Any]], conflict: list[str], where: Any
    ) -> None:
        empty = dict.fromkeys(INSERTED)
        self._company_upsert(tuple(conflict), where).execute_many(
            self.connection, [{**empty, **company} for company in companies]
        )

    def _company_upsert(self, conflict: tuple[str, ...], where: Any) -> DriverStatement:
        """The upsert for one conflict target, compiled once per import.

        The rows are plain strings and numbers, so they go to the driver's executemany
        as they are: SQLAlchemy's per-row parameter processing cost more than SQLite's
        own work for the insert.
        """
        if conflict in self._upserts:
            return self._upserts[conflict]
        table = self._company
        now = self._constant(self.now, table.c.created_at.type)
        statement = self._insert(table).values(
            source=self._constant(self.source.value, sa.String()),
            stage=self._constant(Stage.LISTED.value, sa.String()),
            created_at=now,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict),
            index_where=where,
            # Keep stage, source and history; an empty cell never erases what we knew.
            set_={
                **{
                    column: sa.func.coalesce(statement.excluded[column], table.c[column])
                    for column in UPDATABLE
                },
                "name_key": statement.excluded.name_key,
                "updated_at": statement.excluded.updated_at,
            },
        )
        self._upserts[conflict] = DriverStatement(statement, column_keys=list(INSERTED))
        return self._upserts[conflict]

    def _upsert_contacts(self, contacts: list[dict[str, Any]]) -> None:
        table = self._contact
        before = self.connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        statement = self._insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=["company_id", "identity"],
            set_={
                column: sa.func.coalesce(statement.excluded[column], table.c[column])
                for column in ("name", "role", "email", "phone")
            },
        )
        self.connection.execute(statement, contacts)
        after = self.connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        self.contacts_created += after - before


# ── the whole import ───────────────────────────────────────────────────────────────────


class _RejectsWriter:
    """Writes rejected rows to a CSV (opened on the first one) that Excel opens correctly."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def write(self, rejection: Rejection) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._handle, delimiter=";")
            self._writer.writerow(["ligne", "motif", "contenu"])
        self._writer.writerow([rejection.line, rejection.reason, rejection.raw])

    def close(self) -> str | None:
        if self._handle is None:
            return None
        self._handle.close()
        return str(self.path)


def import_listing(
    *,
    engine: sa.Engine,
    path: Path,
    listing_filter: ListingFilter,
    rejects_dir: Path,
    now: datetime | None = None,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import a listing file into the database, in one transaction, and return what happened.

    Raises ListingFileError, before writing anything, when the file cannot be read at all.
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    path = Path(path)
    layout = detect_layout(path)
    rejects_path = rejects_dir / f"rejets-{path.stem}-{now.strftime('%Y%m%d-%H%M%S')}.csv"
    # In a SIRENE file the commune code is a bare field: records without it can be skipped
    # unparsed. In our own CSV the column may be absent, so every row is read.
    scans: tuple[ScanMode, ...] = ("plain",)
    if layout.kind == ListingKind.SIRENE and listing_filter.communes:
        scans = ("lines", "parity", "plain")
    for mode in scans:
        try:
            report = _import(
                engine, path, layout, listing_filter, rejects_path, now, dry_run, on_progress, mode
            )
            break
        except ParityLost:
            # Nothing was written (one transaction): read again the safer way.
            logger.warning(
                "%s: the %s scan cannot tell records apart, trying again", path.name, mode
            )
    report.seconds = time.perf_counter() - started
    return report


def _import(
    engine: sa.Engine,
    path: Path,
    layout: FileLayout,
    listing_filter: ListingFilter,
    rejects_path: Path,
    now: datetime,
    dry_run: bool,
    on_progress: ProgressCallback | None,
    mode: ScanMode,
) -> ImportReport:
    report = ImportReport(str(path), layout.kind, layout.encoding, layout.delimiter, dry_run)
    validate = validate_sirene_row if layout.kind == ListingKind.SIRENE else validate_synergie_row
    source = Source.SIRENE if layout.kind == ListingKind.SIRENE else Source.LISTING
    rejects = _RejectsWriter(rejects_path)
    total_bytes = path.stat().st_size
    progress = (lambda done: on_progress(done, total_bytes)) if on_progress else None
    width = len(layout.header)

    def reject(line: int, reason: str, raw: str) -> None:
        rejection = Rejection(line, reason, raw.rstrip("\r\n"))
        report.rejected += 1
        if len(report.rejections) < REJECTS_KEPT_IN_REPORT:
            report.rejections.append(rejection)
        rejects.write(rejection)

    stats = ReadStats()
    try:
        with engine.begin() as connection, path.open("rb") as handle:
            loader = ListingLoader(connection, source=source, now=now, dry_run=dry_run)
            if mode == "plain":
                records = iter_records(
                    handle, skip_lines=layout.header_lines, on_bytes=progress, stats=stats,
                    prefilter=commune_prefilter(listing_filter.communes) if layout.kind == ListingKind.SIRENE else None,
                )  # fmt: skip
            else:

                def fits(raw: bytes) -> bool:
                    try:
                        fields = next(csv.reader((_decode(raw),), delimiter=layout.delimiter))
                    except csv.Error:  # a wrong guess of where the record starts
                        return False
                    return len(fields) == width

                records = iter_matching_records(
                    handle, skip_lines=layout.header_lines, on_bytes=progress, stats=stats,
                    pattern=commune_pattern(listing_filter.communes),
                    record_fits=fits if mode == "lines" else None,
                )  # fmt: skip
            batch: list[ListingRow] = []
            for line, raw in records:
                text = _decode(raw)
                try:
                    fields = next(csv.reader((text,), delimiter=layout.delimiter))
                    if mode != "plain" and len(fields) != width:
                        raise ParityLost
                    batch.append(validate(fields, layout.columns, listing_filter, line))
                except RowFilteredOut:
                    continue
                except RowRejected as exc:
                    reject(line, str(exc), text)
                    continue
                except csv.Error as exc:
                    reject(line, f"ligne CSV mal formée ({exc})", text)
                    continue
                report.accepted += 1
                if len(batch) >= BATCH_SIZE:
                    loader.load(batch)
                    batch = []
            if batch:
                loader.load(batch)
    finally:
        report.rejects_path = rejects.close()
    report.rows_read = stats.records
    report.created, report.updated = loader.created, loader.updated
    report.filtered_out = report.rows_read - report.accepted - report.rejected
    report.contacts_created = loader.contacts_created
    return report
