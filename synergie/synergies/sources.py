"""Where matching gets its sites and flows: the flow inventory (``material_flow``) and the listing.

``inventory_territory`` reads every inventoried flow with its company's coordinates; that is
what ``synergie synergies match`` and the demo use. A CSV file can add flows not (yet) in the
inventory (one flow per row):
``siret;direction;code;category;words;tonnes_per_month;outlet;accepts_hazardous``, with
direction ``entrant`` or ``sortant``; its flows are named ``csv:N`` (N the file's line). Sites are
the companies of the listing with coordinates (their own, else their commune's centroid).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.inventory import Direction as InventoryDirection
from models.inventory import MaterialFlow, Unit
from models.tables import Company
from synergie.synergies.codes import WasteCode, WasteCodeError, parse_waste_code
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


# What a quantity in these units weighs, in tonnes; volumes, pieces and pallets are not guessed.
TONNES_PER_UNIT: dict[Unit, float] = {Unit.TONNE: 1.0, Unit.KILOGRAM: 0.001}


def tonnes_per_month(monthly_quantity: float | None, unit: Unit | str) -> float | None:
    """The inventory's monthly quantity in tonnes, or None when its unit is not a mass."""
    factor = TONNES_PER_UNIT.get(Unit(unit))
    if monthly_quantity is None or factor is None:
        return None
    return monthly_quantity * factor


def inventory_territory(*, session: Session) -> FlowTable:
    """Every flow of the inventory as matching input, on its company's site (ids: material_flow.id).

    A flow's code and hazard come from the List of Waste entry it was given; an incoming flow
    with a hazardous code is a site declaring it may take that waste. Companies without
    coordinates are reported, and their flows left out.
    """
    columns: list[Any] = [
        MaterialFlow.id, MaterialFlow.company_id, MaterialFlow.direction, MaterialFlow.waste_code,
        MaterialFlow.hazardous, MaterialFlow.category, MaterialFlow.description,
        MaterialFlow.monthly_quantity, MaterialFlow.unit, MaterialFlow.outlet, Company.name,
        Company.siret, Company.latitude, Company.longitude,
    ]  # fmt: skip
    query = (
        sa.select(*columns)
        .join(Company, col(Company.id) == col(MaterialFlow.company_id))
        .order_by(col(MaterialFlow.id))
    )  # fmt: skip
    table = FlowTable()
    sites: dict[int, Site] = {}
    unlocated: dict[int, str] = {}
    for (flow_id, company_id, direction, waste_code, hazardous, category, description,
         monthly, unit, outlet, name, siret, lat, lon) in session.execute(query):  # fmt: skip
        if lat is None or lon is None:
            unlocated[company_id] = f"{name} ({siret or 'sans SIRET'})"
            continue
        if company_id not in sites:
            sites[company_id] = Site(company_id, name, lat, lon)
        incoming = InventoryDirection(direction) == InventoryDirection.INCOMING
        table.flows.append(
            Flow(
                id=flow_id, site_id=company_id,
                direction=Direction.INCOMING if incoming else Direction.OUTGOING,
                code=WasteCode(waste_code, bool(hazardous)) if waste_code else None,
                category=category or None, words=description or "",
                tonnes_per_month=tonnes_per_month(monthly, unit), outlet=str(outlet or "") or None,
                accepts_hazardous=incoming and bool(hazardous),
            )
        )  # fmt: skip
    table.sites = list(sites.values())
    table.problems = [
        f"{label} : pas de coordonnées, ses flux sont ignorés" for label in unlocated.values()
    ]
    return table


def merge_tables(*tables: FlowTable) -> FlowTable:
    """One table of several: sites once each, flows and problems in order."""
    merged = FlowTable()
    seen: set[object] = set()
    for table in tables:
        for site in table.sites:
            if site.id not in seen:
                seen.add(site.id)
                merged.sites.append(site)
        merged.flows.extend(table.flows)
        merged.problems.extend(table.problems)
    return merged


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
                id=f"csv:{number}", site_id=company.id, direction=direction, code=code,
                category=(row.get("category") or "").strip() or None,
                words=(row.get("words") or "").strip(), tonnes_per_month=quantity,
                outlet=(row.get("outlet") or "").strip() or None,
                accepts_hazardous=(row.get("accepts_hazardous") or "").strip().casefold() in _TRUE,
            )
        )  # fmt: skip
    return table
