"""The ``inventory_accept`` flow: the form staff fill in the Prefect UI once a company's flows are checked."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from synergie.settings import load_settings
from tasks.inventory import accept_company_inventory


class InventoryAcceptParams(BaseModel):
    """L'inventaire des flux à valider : l'entreprise passe à l'étape « flux collectés »."""

    siret: str = Field(
        title="SIRET",
        pattern=r"^\d{14}$",
        description="SIRET de l'entreprise dont les flux sont vérifiés",
    )
    by: str = Field(
        title="Votre nom",
        min_length=1,
        max_length=100,
        description="Votre nom, gardé dans l'historique",
    )


@flow(name="inventory_accept")
def inventory_accept(params: InventoryAcceptParams) -> dict[str, str]:
    """Accept the company's inventory: stage « flux collectés »."""
    return accept_company_inventory(
        settings=load_settings(), siret=params.siret, actor=f"staff:{params.by.strip()}"
    )


if __name__ == "__main__":
    import sys

    inventory_accept(InventoryAcceptParams(siret=sys.argv[1], by=sys.argv[2]))
