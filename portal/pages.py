"""What the portal's page modules share: the renderer they are given and their French refusals."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi.responses import HTMLResponse

__all__ = ["PageRefused", "Render"]


class Render(Protocol):
    """Renders ``templates/portal/<name>`` with the programme's common context."""

    def __call__(self, name: str, status: int = 200, **context: Any) -> HTMLResponse: ...


class PageRefused(Exception):
    """A request a page module answers with the French error page and no change."""

    def __init__(self, status: int, title: str, message: str, hint: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message
        self.hint = hint

    def page(self, render: Render) -> HTMLResponse:
        """Return the error page saying why nothing changed."""
        return render(
            "error.html", self.status, title=self.title, message=self.message, hint=self.hint
        )
