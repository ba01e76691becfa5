"""Where matching gets its sites and flows: the listing's companies and a flow table as plain data.

Until the flow inventory's tables exist, flows come from a CSV file (one flow per row):
``siret;direction;code;category;words;tonnes_per_month;outlet;accepts_hazardous``, with
direction ``entrant`` or ``sortant``. Sites are the companies of the listing with coordinates
(their own, else their commune's centroid).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from models.tables import Company
from synergie.synergies.codes import WasteCodeError, parse_waste_code
from synergie.synergies.matching import Direction, Flow, Site

FLOW_COLUMNS = (
    "siret", "direction", "code", "category", "words", "tonnes_per_month", "outlet",
    "accepts_hazardous",
)  # fmt: skip
_TRUE = {"1", "oui", "o", "yes", "y", "true", "vrai", "x"}


class FlowFileError(ValueError):
    """A flow file that cannot be read at all; the message is in French."""


@dataclass
class FlowTable:
    """The flows read, the sites they sit on, and the rows left out with why."""

    sites: list[Site] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def sites_from_companies(companies: Iterable[Company]) -> tuple[list[Site], list[Company]]:
    """Sites for the companies placed by their coordinates, else their commune's centroid; the others apart."""
    from synergie.listing.communes import load_communes

    sites, missing = [], []
    for company in companies:
        latitude, longitude = company.latitude, company.longitude
        if (latitude is None or longitude is None) and company.commune_code:
            commune = load_communes().get(company.commune_code)
            if commune is not None:
                latitude, longitude = commune.latitude, commune.longitude
        if latitude is None or longitude is None or company.id is None:
            missing.append(company)
        else:
            sites.append(Site(company.id, company.name, latitude, longitude))
    return sites, missing


def read_flow_file(path: Path, *, session: Session) -> FlowTable:
    """Read a flow CSV against the listing: each row's SIRET must be a company with coordinates."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowFileError(f"fichier de flux illisible ({path}) : {exc}") from exc
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=";,\t")
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    if not rows or not {"siret", "direction"} <= set(rows[0]):
        raise FlowFileError(
            f"{path} : colonnes attendues {', '.join(FLOW_COLUMNS)} (au moins siret et direction)"
        )
    sirets = {(r.get("siret") or "").strip() for r in rows}
    companies = session.exec(select(Company).where(col(Company.siret).in_(sirets))).all()
    sites, missing = sites_from_companies(companies)
    by_siret = {c.siret: c for c in companies}
    located = {s.id for s in sites}
    table = FlowTable(sites=sites)
    for c in missing:
        table.problems.append(f"{c.name} ({c.siret}) : pas de coordonnées, ses flux sont ignorés")
    for number, row in enumerate(rows, start=2):
        siret = (row.get("siret") or "").strip()
        company = by_siret.get(siret)
        if company is None:
            table.problems.append(f"ligne {number} : SIRET {siret} absent du listing")
            continue
        if company.id not in located:
            continue
        try:
            direction = Direction((row.get("direction") or "").strip().casefold())
        except ValueError:
            table.problems.append(
                f"ligne {number} : direction « {row.get('direction')} » (entrant ou sortant)"
            )
            continue
        code_text = (row.get("code") or "").strip()
        try:
            code = parse_waste_code(code_text) if code_text else None
        except WasteCodeError as exc:
            table.problems.append(f"ligne {number} : {exc}")
            continue
        quantity_text = (row.get("tonnes_per_month") or "").strip().replace(",", ".")
        try:
            quantity = float(quantity_text) if quantity_text else None
        except ValueError:
            table.problems.append(f"ligne {number} : quantité « {quantity_text} » illisible")
            continue
        table.flows.append(
            Flow(
                id=number, site_id=company.id, direction=direction, code=code,
                category=(row.get("category") or "").strip() or None,
                words=(row.get("words") or "").strip(), tonnes_per_month=quantity,
                outlet=(row.get("outlet") or "").strip() or None,
                accepts_hazardous=(row.get("accepts_hazardous") or "").strip().casefold() in _TRUE,
            )
        )  # fmt: skip
    return table
