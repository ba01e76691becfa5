"""Building a territory's company listing: read a CSV or SIRENE extract, validate, deduplicate, load.

The file is streamed: records are cut from raw byte lines, rows that cannot match the
commune filter are skipped before any CSV parsing or decoding, and accepted rows are
written in batches through SQLAlchemy Core upserts inside one transaction.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Literal

logger = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024
# A record whose quotes are still open after this many physical lines is taken to be a
# stray quote, not a quoted newline, so one bad character cannot swallow the whole file.
MAX_LINES_PER_RECORD = 20
# No listing row is anywhere near this long (a SIRENE row is ~300 bytes): a longer line, or
# record over several lines, is rejected without ever being held whole in memory.
MAX_RECORD_BYTES = 64 * 1024
PROGRESS_EVERY_LINES = 20_000
FAST_BLOCK_BYTES = 4 * 1024 * 1024
REJECTS_KEPT_IN_REPORT = 200
# How much of a rejected overlong line goes to the report and the rejects file.
PREVIEW_BYTES = 200

STAFF_BANDS: tuple[str, ...] = (
    "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53",
)  # fmt: skip
COMMUNE_CODE_PATTERN = re.compile(r"^(\d{5}|2[AB]\d{3})$")


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
    "siret", "statutDiffusionEtablissement", "codeCommuneEtablissement", "activitePrincipaleEtablissement",
    "trancheEffectifsEtablissement", "etatAdministratifEtablissement",
    "denominationUsuelleEtablissement", "enseigne1Etablissement", "enseigne2Etablissement",
    "enseigne3Etablissement", "complementAdresseEtablissement", "numeroVoieEtablissement",
    "indiceRepetitionEtablissement", "typeVoieEtablissement", "libelleVoieEtablissement",
    "codePostalEtablissement", "libelleCommuneEtablissement",
    "coordonneeLambertAbscisseEtablissement", "coordonneeLambertOrdonneeEtablissement",
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
    # Sites (or sites of legal units) whose SIRENE diffusion status is partial: left out.
    not_diffusible: int = 0
    # Imported without a commune code: how many, the first ones with why (also in the rejects file).
    unplaced: int = 0
    unplaced_rows: list[Rejection] = field(default_factory=list)
    legal_units_path: str | None = None
    legal_units_read: int = 0
    # Sites with neither usual name nor sign, named after their legal unit.
    named_from_legal_units: int = 0

    @property
    def imported(self) -> int:
        return self.created + self.updated


ProgressCallback = Callable[[int, int], None]
# Called by the readers for a line they reject themselves: (line number, French reason, the
# start of the line).
ProblemCallback = Callable[[int, str, bytes], None]


class UndecodableRecord(ValueError):
    """A record holding bytes that are neither UTF-8 nor Windows-1252; the message is in French."""

    def __init__(self, raw: bytes, position: int) -> None:
        # Shown as the reading that leaves fewer characters unreadable (a UTF-8 row with one
        # stray byte stays readable).
        self.text = min(
            (raw.decode(codec, errors="replace") for codec in ("utf-8", "cp1252")),
            key=lambda text: text.count("\ufffd"),
        )
        super().__init__(
            f"caractère illisible (octet 0x{raw[position]:02X} en position {position + 1}, "
            "ni UTF-8 ni Windows-1252) : corrigez la ligne ou réenregistrez le fichier "
            "au format « CSV UTF-8 »"
        )


def too_long_reason(size: int) -> str:
    """The French reason given for a line or record over MAX_RECORD_BYTES."""
    size_text, limit_text = (f"{n:,}".replace(",", " ") for n in (size, MAX_RECORD_BYTES))
    return (
        f"ligne beaucoup trop longue ({size_text} octets, au plus {limit_text}) : ignorée "
        "sans être lue ; un guillemet ou un saut de ligne manque sans doute"
    )


# ── reading ────────────────────────────────────────────────────────────────────────────


def normalise_header(name: str) -> str:
    """Lower-case, accent-free, underscore-joined form of a header or name."""
    text = unicodedata.normalize("NFKD", name.strip().strip("\ufeff"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def decode_record(raw: bytes) -> str:
    """Return ``raw`` decoded as UTF-8, else as Windows-1252; raise UndecodableRecord if neither."""
    # Excel exports in cp1252; one file may even mix both when rows were pasted in.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError as exc:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in cp1252
        raise UndecodableRecord(raw, exc.start) from None


def decode_leniently(raw: bytes) -> str:
    """Return ``raw`` decoded as ``decode_record`` does, an unreadable byte shown as U+FFFD."""
    try:
        return decode_record(raw)
    except UndecodableRecord as exc:
        return exc.text


def _open_binary(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise ListingFileError(f"fichier introuvable : {path}") from exc
    except IsADirectoryError as exc:
        raise ListingFileError(f"{path} est un dossier, pas un fichier CSV") from exc
    except PermissionError as exc:
        raise ListingFileError(f"lecture interdite : {path} (droits du fichier)") from exc


# An .xlsx (or .xlsm) workbook is a zip archive: these are its first bytes.
_ZIP_MAGIC = b"PK\x03\x04"
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


def is_workbook(path: Path) -> bool:
    """Whether ``path`` is an Excel workbook (.xlsx) rather than a CSV text file."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == _ZIP_MAGIC
    except OSError:
        return False


def _cell_text(value: object) -> str:
    """A cell as a CSV field: integral numbers without ``.0`` (SIRET, postcodes), dates in ISO."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return]
    return str(value)


def workbook_to_csv(path: Path, target: Path) -> Path:
    """Write the first sheet of the workbook ``path`` as a UTF-8 CSV (``;``) at ``target``; return it.

    The rows keep their numbers (line n of the CSV is row n of the sheet), so a rejected
    row's line number is the one staff see in their spreadsheet.
    """
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as exc:
        raise ListingFileError(
            f"{path.name} ressemble à un classeur Excel mais ne s'ouvre pas : "
            "enregistrez-le de nouveau au format .xlsx ou « CSV UTF-8 »"
        ) from exc
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise ListingFileError(f"le classeur {path.name} n'a aucune feuille")
        with target.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter=";", lineterminator="\n")
            for row in sheet.iter_rows(values_only=True):
                writer.writerow([_cell_text(value).replace("\n", " ") for value in row])
    finally:
        workbook.close()
    return target


@dataclass(frozen=True)
class CsvShape:
    """How a CSV file is written: encoding guess, delimiter, header fields, lines up to the header."""

    encoding: str
    delimiter: str
    header: tuple[str, ...]
    header_lines: int


def sniff_csv(path: Path) -> CsvShape:
    """Read the start of a CSV file and tell its encoding, delimiter and header; raise ListingFileError if unreadable."""
    with _open_binary(path) as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise ListingFileError(f"le fichier {path.name} est vide")
    if b"\x00" in head:
        raise ListingFileError(
            f"{path.name} n'est ni un fichier CSV ni un classeur .xlsx (ancien format Excel .xls, "
            "UTF-16 ?) : enregistrez-le au format « Classeur Excel (.xlsx) » ou « CSV UTF-8 »"
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
    header_text = decode_leniently(lines[header_index])
    delimiter = max(";,\t|", key=header_text.count)
    if header_text.count(delimiter) == 0:
        raise ListingFileError(
            f"{path.name} : l'en-tête n'a qu'une colonne ({header_text[:60]!r}) ; "
            "séparez les colonnes par « ; » ou « , »"
        )
    header = tuple(
        h.strip().strip("\ufeff") for h in next(csv.reader([header_text], delimiter=delimiter))
    )
    return CsvShape(encoding, delimiter, header, header_index + 1)


def detect_layout(path: Path) -> FileLayout:
    """Read the start of the file and tell its kind, encoding, delimiter and columns.

    A workbook is read through its CSV rendering (``workbook_to_csv``).
    """
    if is_workbook(path):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="synergie-xlsx-") as folder:
            return detect_layout(workbook_to_csv(path, Path(folder) / f"{path.stem}.csv"))
    shape = sniff_csv(path)
    header = shape.header
    if all(name in header for name in SIRENE_REQUIRED):
        columns = {name: header.index(name) for name in SIRENE_COLUMNS if name in header}
        kind = ListingKind.SIRENE
    elif all(name in header for name in LEGAL_UNIT_REQUIRED):
        raise ListingFileError(
            f"{path.name} est le fichier des unités légales de SIRENE (StockUniteLegale) : "
            "importez le fichier des établissements (StockEtablissement) et donnez celui-ci "
            "avec --legal-units"
        )
    else:
        columns = _synergie_columns(header, path)
        kind = ListingKind.SYNERGIE
    return FileLayout(kind, shape.encoding, shape.delimiter, header, columns, shape.header_lines)


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
    record_fits: Callable[[bytes], bool] | None = None,
    on_problem: ProblemCallback | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield (first line number, raw record) for each non-blank record after the header.

    A record spans several physical lines when a quoted field holds a newline (an odd
    number of quotes so far). When the quotes do not close within MAX_LINES_PER_RECORD
    lines or MAX_RECORD_BYTES, or the record they close does not pass ``record_fits``,
    the first line holds a stray quote: it is yielded alone (its parser will reject it)
    and the lines after it are read again one by one, so a stray quote costs one row.
    A line over MAX_RECORD_BYTES goes to ``on_problem`` and is skipped in small reads,
    never held whole. Records the prefilter rules out are skipped undecoded.
    """
    stats = stats if stats is not None else ReadStats()
    line_no = 0
    consumed = 0
    pending: list[bytes] = []
    pending_start = pending_size = 0
    readline = handle.readline

    def settle_stray() -> Iterator[tuple[int, bytes]]:
        # Not a quoted newline after all: give the first line back alone and read the
        # others again as records of their own.
        first, rest = pending[0], pending[1:]
        pending.clear()
        stats.records += 1
        if prefilter is None or prefilter(first):
            yield pending_start, first
        yield from _reread(rest, pending_start + 1, prefilter, stats)

    while line := readline(MAX_RECORD_BYTES + 1):
        line_no += 1
        consumed += len(line)
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            size, preview = len(line), line[:PREVIEW_BYTES]
            while (rest := readline(MAX_RECORD_BYTES)) and not rest.endswith(b"\n"):
                size += len(rest)
            size += len(rest)
            consumed += size - len(line)
            if line_no <= skip_lines:
                continue
            if pending:
                yield from settle_stray()
            stats.records += 1
            if on_problem is not None:
                on_problem(line_no, too_long_reason(size), preview)
            continue
        if line_no <= skip_lines:
            continue
        if on_bytes is not None and line_no % PROGRESS_EVERY_LINES == 0:
            on_bytes(consumed)
        if pending:
            pending.append(line)
            pending_size += len(line)
            if line.count(b'"') % 2 == 0:
                if len(pending) >= MAX_LINES_PER_RECORD or pending_size > MAX_RECORD_BYTES:
                    yield from settle_stray()
                continue
            record = b"".join(pending)
            if record_fits is not None and not record_fits(record):
                yield from settle_stray()
                continue
            pending.clear()
            stats.records += 1
            if prefilter is None or prefilter(record):
                yield pending_start, record
            continue
        if line.count(b'"') % 2:
            pending.append(line)
            pending_start, pending_size = line_no, len(line)
            continue
        if not line.strip():
            continue
        stats.records += 1
        if prefilter is None or prefilter(line):
            yield line_no, line
    if pending:
        yield from settle_stray()
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
    on_problem: ProblemCallback | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield (first line number, raw record) for the records holding a ``pattern`` match.

    The fast path for a filtered SIRENE extract: the file is scanned in large blocks
    with one regex search, and only the records around a match are cut out, so the
    99% of rows outside the territory cost no Python work at all. A record starts
    where the number of quotes since the start of the file is even; when a stray quote
    breaks that rule the caller learns it (ParityLost, from the parser's column count
    or an endless record) and reads the file line by line instead. A physical line longer
    than MAX_RECORD_BYTES goes to ``on_problem`` and is skipped block by block, never held
    whole; a longer record over several lines sends the caller back to line by line too.
    ``stats.records`` counts physical lines here (quoted newlines included).
    """
    stats = stats if stats is not None else ReadStats()
    line_base = 0
    consumed = 0
    for _ in range(skip_lines):
        consumed += len(handle.readline())
        line_base += 1
    carry = b""
    skipped: tuple[int, bytes] | None = None  # inside an overlong line: (its size so far, start)
    while True:
        block = handle.read(FAST_BLOCK_BYTES)
        consumed += len(block)
        if skipped is not None:
            end = block.find(b"\n")
            if end < 0 and block:
                skipped = (skipped[0] + len(block), skipped[1])
                continue
            line_base += 1
            stats.records += 1
            if on_problem is not None:
                size = skipped[0] + (end + 1 if end >= 0 else 0)
                on_problem(line_base, too_long_reason(size), skipped[1])
            skipped = None
            block = block[end + 1 :] if end >= 0 else b""
            if not block:
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
        stats.records += newlines
        line_base += newlines
        if len(carry) > MAX_RECORD_BYTES:
            if b"\n" in carry:  # a record over several lines, and far too long
                raise ParityLost
            # One line longer than a sane row: drop what we hold and skip to its end.
            skipped, carry = (len(carry), carry[:PREVIEW_BYTES]), b""
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


# ── SIRENE legal units ─────────────────────────────────────────────────────────────────

LEGAL_UNIT_REQUIRED = ("siren", "denominationUniteLegale")
LEGAL_UNIT_COLUMNS = (
    "siren", "statutDiffusionUniteLegale", "denominationUniteLegale", "prenomUsuelUniteLegale",
    "prenom1UniteLegale", "nomUsageUniteLegale", "nomUniteLegale",
)  # fmt: skip


@dataclass(frozen=True)
class LegalUnit:
    """What the import needs of a SIRENE legal unit: whether it may be prospected, and its name."""

    siren: str
    diffusion: str
    name: str | None


def legal_unit_name(get: Callable[[str], str]) -> str | None:
    """The legal unit's name: its denomination, or a sole trader's first and last names."""
    denomination = get("denominationUniteLegale")
    if denomination:
        return denomination
    first = get("prenomUsuelUniteLegale") or get("prenom1UniteLegale")
    last = get("nomUsageUniteLegale") or get("nomUniteLegale")
    return " ".join(part for part in (first, last) if part) or None


def _legal_unit(fields: list[str], columns: dict[str, int], width: int) -> LegalUnit | None:
    if len(fields) != width:
        return None

    def get(name: str) -> str:
        index = columns.get(name)
        return fields[index].strip() if index is not None else ""

    return LegalUnit(get("siren"), get("statutDiffusionUniteLegale"), legal_unit_name(get))


def scan_legal_units(
    path: Path, sirens: Iterable[str], *, on_bytes: Callable[[int], None] | None = None
) -> tuple[dict[str, LegalUnit], int]:
    """The legal units of ``sirens`` found in a StockUniteLegale file, and how many lines it has.

    The 25-million-row file is read in large blocks and only the lines starting with a
    wanted SIREN (its first column) are parsed: one slice and one set look-up per line. A
    file whose first column is not ``siren`` is parsed line by line instead.
    """
    shape = sniff_csv(path)
    header = shape.header
    missing = [name for name in LEGAL_UNIT_REQUIRED if name not in header]
    if missing:
        raise ListingFileError(
            f"{path.name} n'est pas un fichier des unités légales de SIRENE (StockUniteLegale) : "
            f"colonne(s) {', '.join(missing)} absente(s)"
        )
    columns = {name: header.index(name) for name in LEGAL_UNIT_COLUMNS if name in header}
    width = len(header)
    wanted = {siren.encode() for siren in sirens}
    found: dict[str, LegalUnit] = {}
    lines_read = 0

    def parse(raw: bytes) -> LegalUnit | None:
        try:
            fields = next(csv.reader((decode_leniently(raw),), delimiter=shape.delimiter))
        except (csv.Error, StopIteration):
            return None
        return _legal_unit(fields, columns, width)

    with _open_binary(path) as handle:
        consumed = sum(len(handle.readline()) for _ in range(shape.header_lines))
        if columns["siren"] != 0:
            reader = csv.reader(
                io.TextIOWrapper(handle, encoding=shape.encoding, errors="replace", newline=""),
                delimiter=shape.delimiter,
            )
            for fields in reader:
                lines_read += 1
                unit = _legal_unit(fields, columns, width)
                if unit is not None and unit.siren.encode() in wanted:
                    found[unit.siren] = unit
            return found, lines_read
        carry = b""
        start = 0  # 1 when the SIREN field is quoted
        while True:
            block = handle.read(FAST_BLOCK_BYTES)
            consumed += len(block)
            lines = (carry + block).split(b"\n")
            carry = lines.pop() if block else b""
            if not lines or lines == [b""]:
                break
            if lines_read == 0 and lines[0].startswith(b'"'):
                start = 1
            lines_read += len(lines)
            stop = start + 9
            for raw in [line for line in lines if line[start:stop] in wanted]:
                unit = parse(raw)
                if unit is None and raw.count(b'"') % 2:
                    # A quoted field runs over several lines: join the lines that follow.
                    index = lines.index(raw)
                    for end in range(index + 2, min(index + MAX_LINES_PER_RECORD, len(lines)) + 1):
                        unit = parse(b"\n".join(lines[index:end]))
                        if unit is not None:
                            break
                if unit is not None and unit.siren == raw[start:stop].decode():
                    found[unit.siren] = unit
            if on_bytes is not None:
                on_bytes(consumed - len(carry))
            if not block:
                break
    return found, lines_read
