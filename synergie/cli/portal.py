"""The portal command: serve the companies' web pages."""

from __future__ import annotations

from typing import Annotated

import typer

from synergie.cli.common import (
    cli_settings,
)

app = typer.Typer()


@app.command()
def portal(
    host: Annotated[str, typer.Option(help="Adresse d'écoute")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 8000,
) -> None:
    """Sert le portail des entreprises (désinscription…)."""
    from portal.server import serve

    serve(cli_settings(), host=host, port=port)
