"""The ``import_listing`` flow: a territory's company listing from a CSV or a SIRENE extract."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field, field_validator, model_validator

from synergie import SAMPLE_LISTING
from synergie.listing.reading import STAFF_BANDS, ListingFilter
from synergie.settings import load_settings
from tasks.listing import import_listing_file, publish_import_report


class ImportListingParams(BaseModel):
    """Le fichier à importer et les lignes à garder. Par défaut, un essai à blanc de la liste d'exemple."""

    path: str = Field(
        title="Fichier",
        default=str(SAMPLE_LISTING),
        min_length=1,
        description="Chemin du fichier (CSV ou classeur .xlsx) sur la machine qui exécute le flow ; "
        "depuis un navigateur, déposez-le plutôt sur la page « Importer une liste » du portail",
    )
    legal_units: str = Field(
        title="Unités légales (SIRENE)",
        default="",
        description="Chemin du fichier StockUniteLegale de SIRENE, à côté d'un StockEtablissement : "
        "il donne la raison sociale des établissements sans nom ni enseigne (vide : aucun)",
    )
    communes: list[str] = Field(
        title="Codes commune INSEE",
        default_factory=list,
        max_length=500,
        description="Codes commune INSEE à garder (vide : toutes)",
    )
    naf_prefixes: list[str] = Field(
        title="Codes NAF",
        default_factory=list,
        max_length=200,
        description="Débuts de codes NAF à garder, ex. 17.21 ou 16",
    )
    min_staff_band: str = Field(
        title="Tranche d'effectifs minimale",
        default="",
        description=f"Tranche d'effectifs INSEE minimale ({', '.join(STAFF_BANDS)})",
    )
    include_closed: bool = Field(
        title="Établissements fermés",
        default=False,
        description="Garder aussi les établissements fermés",
    )
    dry_run: bool = Field(
        title="Essai à blanc",
        default=True,
        description="Essai à blanc : tout vérifier, ne rien écrire",
    )

    @field_validator("min_staff_band", mode="before")
    @classmethod
    def _known_band(cls, value: str | None) -> str:
        value = (value or "").strip()
        if value and value not in STAFF_BANDS:
            raise ValueError(f"tranche inconnue {value!r} : choisir parmi {', '.join(STAFF_BANDS)}")
        return value

    @model_validator(mode="after")
    def _valid_filter(self) -> ImportListingParams:
        self.listing_filter()  # raises ValueError with a French message on a bad commune code
        return self

    def listing_filter(self) -> ListingFilter:
        return ListingFilter(
            communes=frozenset(self.communes),
            naf_prefixes=tuple(self.naf_prefixes),
            min_staff_band=self.min_staff_band or None,
            include_closed=self.include_closed,
        )


@flow(name="import_listing", log_prints=False)
def import_listing(
    params: ImportListingParams = ImportListingParams(),  # noqa: B008 (the default the UI form shows)
) -> dict[str, int | str | None]:
    """Import a listing file, then publish its report; returns the counts."""
    settings = load_settings()
    report = import_listing_file(
        settings=settings,
        path=params.path,
        listing_filter=params.listing_filter(),
        dry_run=params.dry_run,
        legal_units=params.legal_units.strip() or None,
    )
    publish_import_report(report)
    return {
        "rows_read": report.rows_read,
        "created": report.created,
        "updated": report.updated,
        "rejected": report.rejected,
        "filtered_out": report.filtered_out,
        "not_diffusible": report.not_diffusible,
        "unplaced": report.unplaced,
        "named_from_legal_units": report.named_from_legal_units,
        "rejects_path": report.rejects_path,
    }


if __name__ == "__main__":
    import_listing()
