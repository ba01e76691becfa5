"""Validating listing rows: SIRET, e-mail, phone, NAF and the other columns, in French when refused."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.fr import siret as stdnum_siret

from models.enums import LocationPrecision
from synergie.listing.communes import PlaceNotFound, department_of, load_communes
from synergie.listing.reading import (
    COMMUNE_CODE_PATTERN,
    STAFF_BANDS,
    ListingFilter,
    normalise_header,
)

UNKNOWN_STAFF_BAND = "NN"
NAF_PATTERN = re.compile(r"^(\d{2})\.?(\d{2})([A-Z])$")
POSTCODE_PATTERN = re.compile(r"^\d{5}$")
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

# ── validating ─────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ListingRow:
    """One validated row: the company's fields and, when the row names one, its contact."""

    line: int
    company: dict[str, Any]
    contact: dict[str, Any] | None
    # Why the row was imported without a commune code (French), for the rejects file.
    problem: str | None = None


class RowRejected(ValueError):
    """A row that cannot be imported; the message is the French reason shown to staff."""


class RowFilteredOut(Exception):
    """A valid row outside the filters (commune, NAF, staff band, closed site)."""


class RowNotDiffusible(RowFilteredOut):
    """A SIRENE site or legal unit whose diffusion status is partial: never imported for outreach."""


# SIRENE's statutDiffusion*: "O" diffusible; "P" partially diffusible (the person refused
# prospecting, the fields read [ND]); "N" (non diffusible) no longer appears in the stock files.
NOT_DIFFUSIBLE = frozenset({"P", "N"})
# A SIRENE position further than this from its commune's centroid is a wrong projection or a
# wrong commune: the commune's centroid is used instead.
SITE_MAX_KM_FROM_COMMUNE = 40.0
# The projected systems of INSEE's SIRENE coordinates, by department (EPSG codes): Lambert-93
# in mainland France and Corsica, the local UTM zones overseas.
SIRENE_PROJECTIONS = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}
LAMBERT_93 = 2154


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


@lru_cache(maxsize=8)
def _to_wgs84(epsg: int) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(epsg, 4326, always_xy=True)


@lru_cache(maxsize=1)
def _ellipsoid() -> Any:
    from pyproj import Geod

    return Geod(ellps="WGS84")


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The geodesic distance between two WGS84 points, in km."""
    return float(_ellipsoid().inv(lon1, lat1, lon2, lat2)[2]) / 1000


def sirene_position(x: str, y: str, commune_code: str | None) -> tuple[float, float] | None:
    """The (latitude, longitude) of SIRENE's projected coordinates, or None when absent or masked."""
    try:
        easting, northing = float(x), float(y)
    except ValueError:  # empty, or [ND] on a partially diffusible row
        return None
    epsg = SIRENE_PROJECTIONS.get(department_of(commune_code or ""), LAMBERT_93)
    longitude, latitude = _to_wgs84(epsg).transform(easting, northing)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return round(latitude, 6), round(longitude, 6)


def place_company(company: dict[str, Any]) -> str | None:
    """Complete ``company``'s commune code and coordinates from France's communes; return why not, in French.

    The row's own code wins when it is a known commune; otherwise the postcode and commune
    name decide. Coordinates given by the row are the site's; without them, the commune's
    centroid stands in (``location_precision`` says which).
    """
    communes = load_communes()
    code = company.get("commune_code")
    commune = communes.get(code) if code else None
    problem = None
    if commune is None:
        try:
            commune = communes.resolve(company.get("postcode"), company.get("commune"))
        except PlaceNotFound as exc:
            problem = (f"code commune INSEE inconnu « {code} » ; " if code else "") + str(exc)
    company["commune_code"] = commune.code if commune else None
    latitude, longitude = company.get("latitude"), company.get("longitude")
    centroid = (
        (commune.latitude, commune.longitude)
        if commune and commune.latitude is not None and commune.longitude is not None
        else None
    )
    if (
        latitude is not None
        and longitude is not None
        and (
            centroid is None
            or distance_km(latitude, longitude, *centroid) <= SITE_MAX_KM_FROM_COMMUNE
        )
    ):
        company["location_precision"] = LocationPrecision.SITE.value
        return problem
    if centroid is not None:
        company["latitude"], company["longitude"] = centroid
        company["location_precision"] = LocationPrecision.COMMUNE.value
    else:
        company["latitude"] = company["longitude"] = company["location_precision"] = None
    return problem


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
    company: dict[str, Any] = {
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
    problem = place_company(company)
    if problem and listing_filter.communes:
        raise RowRejected(
            f"{problem} : impossible de savoir si l'entreprise est dans les communes choisies"
        )
    if not _passes(listing_filter, company["commune_code"], naf, band):
        raise RowFilteredOut
    return ListingRow(line, company, contact, problem)


def validate_sirene_row(
    fields: list[str],
    columns: dict[str, int],
    listing_filter: ListingFilter,
    line: int,
    *,
    name_later: bool = False,
) -> ListingRow:
    """Turn one row of SIRENE's StockEtablissement into a ListingRow, or raise RowRejected / RowFilteredOut.

    With ``name_later`` (a legal-units file comes next), a site with neither usual name nor
    sign is kept with ``name`` None: the legal unit's name fills it in.
    """

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
    if get("statutDiffusionEtablissement") in NOT_DIFFUSIBLE:
        raise RowNotDiffusible
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
    if not name and not name_later:
        raise RowRejected(
            "établissement sans dénomination usuelle ni enseigne : importez-le avec le fichier "
            "des unités légales (--legal-units StockUniteLegale.csv), qui donne sa raison sociale"
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
    position = sirene_position(
        get("coordonneeLambertAbscisseEtablissement"),
        get("coordonneeLambertOrdonneeEtablissement"),
        commune_code,
    )
    company: dict[str, Any] = {
        "siret": siret,
        "name": _text(name, 300),
        "name_key": name_key(name) if name else None,
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
        "latitude": position[0] if position else None,
        "longitude": position[1] if position else None,
    }
    problem = place_company(company)
    return ListingRow(line, company, None, problem)


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
