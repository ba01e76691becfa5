"""The ``import_listing`` flow: a territory's company listing from a CSV or a SIRENE extract."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field, field_validator, model_validator

from synergie import SAMPLE_LISTING
from synergie.listing.reading import STAFF_BANDS, ListingFilter
from synergie.settings import load_settings
from tasks.listing import import_listing_file, publish_import_report


class ImportListingParams(BaseModel):
    """What to import and which rows to keep; by default a dry run of the bundled sample."""

    path: str = Field(
        default=str(SAMPLE_LISTING),
        min_length=1,
        description="Chemin du fichier CSV sur la machine qui exécute le flow",
    )
    communes: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Codes commune INSEE à garder (vide : toutes)",
    )
    naf_prefixes: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Débuts de codes NAF à garder, ex. 17.21 ou 16",
    )
    min_staff_band: str | None = Field(
        default=None, description=f"Tranche d'effectifs INSEE minimale ({', '.join(STAFF_BANDS)})"
    )
    include_closed: bool = Field(
        default=False, description="Garder aussi les établissements fermés"
    )
    dry_run: bool = Field(default=True, description="Essai à blanc : tout vérifier, ne rien écrire")

    @field_validator("min_staff_band")
    @classmethod
    def _known_band(cls, value: str | None) -> str | None:
        if value is not None and value not in STAFF_BANDS:
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
            min_staff_band=self.min_staff_band,
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
    )
    publish_import_report(report)
    return {
        "rows_read": report.rows_read,
        "created": report.created,
        "updated": report.updated,
        "rejected": report.rejected,
        "filtered_out": report.filtered_out,
        "rejects_path": report.rejects_path,
    }


if __name__ == "__main__":
    import_listing()
