"""France's communes, offline: INSEE code, name, postcodes and centroid, from the shipped table.

``data/communes.csv.gz`` (source and date in ``data/README.md``) holds every commune of the
Code officiel géographique, Paris/Lyon/Marseille's arrondissements (SIRENE codes their sites
by arrondissement) and the delegated or associated communes whose old names still appear in
addresses. Names are compared by ``place_key``: no accents, case, hyphens or apostrophes, and
Saint/Sainte written like La Poste's St/Ste.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from text_unidecode import unidecode

DATA = Path(__file__).resolve().parent / "data" / "communes.csv.gz"
# How many candidates a message names before "…".
CANDIDATES_SHOWN = 8
_SHORT_WORDS = {"saint": "st", "sainte": "ste"}
_ARRONDISSEMENT = re.compile(r"^(?P<city>.+) (?P<number>\d+)(?:e|er) Arrondissement$")


def place_key(name: str) -> str:
    """The comparable form of a commune name: ASCII, lower case, words only, Saint → st."""
    ascii_name = name if name.isascii() else unidecode(name)
    words = re.sub(r"[^a-z0-9]+", " ", ascii_name.lower()).split()
    if "cedex" in words:  # "NUITS ST GEORGES CEDEX 1": the distribution, not the commune
        words = words[: words.index("cedex")]
    return " ".join(_SHORT_WORDS.get(word, word) for word in words)


def department_of(code: str) -> str:
    """The department of a commune code or postcode (971…976 overseas; 20… is Corsica's 2A/2B)."""
    return code[:3] if code.startswith("97") else code[:2]


@dataclass(frozen=True)
class Commune:
    """A commune (or arrondissement) that a company can be placed in."""

    code: str
    name: str
    latitude: float | None
    longitude: float | None
    postcodes: tuple[str, ...]

    def label(self) -> str:
        """How staff are shown it: name, code and postcodes."""
        postcodes = ", ".join(self.postcodes)
        return f"{self.name} ({self.code}{', ' + postcodes if postcodes else ''})"


class PlaceNotFound(LookupError):
    """A place that names no commune, or several; the message is the French reason."""

    def __init__(self, message: str, candidates: Iterable[Commune] = ()) -> None:
        super().__init__(message)
        self.candidates = tuple(candidates)


@dataclass
class Communes:
    """The lookup tables: by code, by postcode, by name (own names first, then other names)."""

    by_code: dict[str, Commune] = field(default_factory=dict)
    # A delegated or associated commune's code → the commune it now belongs to.
    merged_into: dict[str, str] = field(default_factory=dict)
    by_postcode: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (name, code) of the other names a commune answers to: delegated and associated
    # communes, arrondissements written the short way. Indexed on first use only: an
    # import whose rows all carry their code never pays for it.
    aliases: list[tuple[str, str]] = field(default_factory=list)
    _own_names: dict[str, set[str]] | None = None
    _other_names: dict[str, set[str]] = field(default_factory=dict)

    def _name_indexes(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        if self._own_names is None:
            own: dict[str, set[str]] = defaultdict(set)
            other: dict[str, set[str]] = defaultdict(set)
            for code, commune in self.by_code.items():
                own[place_key(commune.name)].add(code)
            for name, code in self.aliases:
                if code in self.by_code:
                    other[place_key(name)].add(code)
            self._own_names, self._other_names = own, other
        return self._own_names, self._other_names

    def get(self, code: str) -> Commune | None:
        """The commune with this INSEE code, following a merged commune to the one it joined."""
        code = code.strip().upper()
        found = self.by_code.get(code)
        if found is None and code in self.merged_into:
            found = self.by_code.get(self.merged_into[code])
        return found

    def named(self, key: str, among: Iterable[str] | None = None) -> list[Commune]:
        """Communes answering to the name key, own names first: ``among`` limits the codes."""
        allowed = None if among is None else set(among)
        for index in self._name_indexes():
            codes = index.get(key, set())
            if allowed is not None:
                codes = codes & allowed
            if codes:
                return [self.by_code[code] for code in sorted(codes)]
        return []

    def resolve(self, postcode: str | None, name: str | None) -> Commune:
        """The one commune a postcode and commune name point to; PlaceNotFound saying why otherwise."""
        key = place_key(name) if name else ""
        if postcode and postcode in self.by_postcode:
            codes = self.by_postcode[postcode]
            if not key:
                if len(codes) == 1:
                    return self.by_code[codes[0]]
                raise _ambiguous(
                    f"le code postal {postcode} couvre plusieurs communes",
                    [self.by_code[c] for c in codes],
                )
            found = self.named(key, codes)
            if len(found) == 1:
                return found[0]
            if found:
                raise _ambiguous(f"commune « {name} » ambiguë au code postal {postcode}", found)
            raise PlaceNotFound(
                f"commune « {name} » introuvable au code postal {postcode} (communes de ce "
                f"code postal : {_names([self.by_code[c] for c in codes])})"
            )
        if not key:
            if postcode:
                raise PlaceNotFound(f"code postal {postcode} inconnu et commune non indiquée")
            raise PlaceNotFound("ni code commune, ni code postal, ni commune")
        # No postcode, or one no commune has (a CEDEX, a PO box): the name decides, within
        # the postcode's department when there is one.
        department = department_of(postcode) if postcode else None
        found = [
            commune
            for commune in self.named(key)
            if department is None
            or department_of(commune.code) == department
            or (department == "20" and commune.code[:2] in ("2A", "2B"))
        ]
        where = f" dans le département {department}" if department else ""
        if len(found) == 1:
            return found[0]
        if found:
            raise _ambiguous(f"commune « {name} » ambiguë{where}", found)
        unknown = f"code postal {postcode} inconnu, " if postcode else ""
        raise PlaceNotFound(f"{unknown}commune « {name} » introuvable{where}")

    def find(self, term: str) -> list[Commune]:
        """Communes meant by a code, a postcode, a name, or "postcode name"; several when ambiguous."""
        text = term.strip()
        by_code = self.get(text)
        by_postcode = [self.by_code[c] for c in self.by_postcode.get(text, ())]
        if by_code is not None or by_postcode:
            found = ([by_code] if by_code else []) + [c for c in by_postcode if c != by_code]
            return found
        pair = re.match(r"^(\d{5})\s+(.+)$", text)
        if pair:
            try:
                return [self.resolve(pair[1], pair[2])]
            except PlaceNotFound as exc:
                return list(exc.candidates)
        return self.named(place_key(text))


def commune_codes(terms: Iterable[str]) -> list[str]:
    """The INSEE codes meant by codes, names or postcodes; ValueError in French for an unknown or ambiguous one."""
    communes = load_communes()
    codes: set[str] = set()
    for term in terms:
        found = communes.find(term)
        if not found:
            raise ValueError(
                f"commune inconnue « {term.strip()} » : donnez un code commune INSEE (ex. 21464), "
                "un code postal ou un nom de commune de France"
            )
        if len(found) > 1:
            shown = "; ".join(c.label() for c in found[:CANDIDATES_SHOWN])
            more = f"… (+{len(found) - CANDIDATES_SHOWN})" if len(found) > CANDIDATES_SHOWN else ""
            raise ValueError(
                f"« {term.strip()} » désigne plusieurs communes : {shown}{more} ; "
                "donnez le code commune INSEE de chacune"
            )
        codes.add(found[0].code)
    return sorted(codes)


def _names(communes: Iterable[Commune]) -> str:
    shown = [c.name for c in communes]
    more = len(shown) - CANDIDATES_SHOWN
    return ", ".join(shown[:CANDIDATES_SHOWN]) + (f"… (+{more})" if more > 0 else "")


def _ambiguous(reason: str, candidates: list[Commune]) -> PlaceNotFound:
    shown = "; ".join(c.label() for c in candidates[:CANDIDATES_SHOWN])
    more = len(candidates) - CANDIDATES_SHOWN
    return PlaceNotFound(
        f"{reason} : {shown}{f'… (+{more})' if more > 0 else ''} ; indiquez le code commune INSEE",
        candidates,
    )


@lru_cache(maxsize=1)
def load_communes(path: Path = DATA) -> Communes:
    """Read the shipped communes table once per process."""
    communes = Communes()
    postcodes: dict[str, list[str]] = defaultdict(list)
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    for code, kind, name, parent, lat, lon, codes in csv.reader(
        io.StringIO(text.split("\n", 1)[1]), delimiter=";"
    ):
        if kind in ("COMD", "COMA"):
            if parent and parent != code:
                communes.merged_into.setdefault(code, parent)
            communes.aliases.append((name, parent))
            continue
        own = tuple(codes.split())
        communes.by_code[code] = Commune(
            code, name, float(lat) if lat else None, float(lon) if lon else None, own
        )
        for postcode in own:
            postcodes[postcode].append(code)
        arrondissement = _ARRONDISSEMENT.match(name) if kind == "ARM" else None
        if arrondissement:  # "Paris 15e Arrondissement" is written "PARIS 15", "Paris 15e", "Paris"
            city, number = arrondissement["city"], arrondissement["number"]
            for alias in (city, f"{city} {number}", f"{city} {number}e", f"{city} {number}er"):
                communes.aliases.append((alias, code))
    communes.by_postcode = {p: tuple(codes) for p, codes in postcodes.items()}
    return communes
