"""Runs the portal with uvicorn: database engine, app, and access logs with link tokens masked."""

from __future__ import annotations

import logging
import re

import uvicorn

from models.db import make_engine, require_schema
from portal.app import create_app
from synergie.settings import Settings

__all__ = ["RedactTokens", "redact_tokens", "serve"]

logger = logging.getLogger(__name__)

# A signed link token (synergie.links, format v1) anywhere in a logged path.
_TOKEN = re.compile(r"v\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def redact_tokens(text: str) -> str:
    """Return ``text`` with every link token replaced by a placeholder."""
    return _TOKEN.sub("<token>", text)


class RedactTokens(logging.Filter):
    """Masks link tokens in log records: whoever reads the logs must not be able to use the links."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            # uvicorn's access formatter unpacks these five arguments: keep their shape.
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the portal on ``host:port`` until interrupted."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    engine = make_engine(settings.db_url)
    try:
        require_schema(engine)
        app = create_app(settings=settings, engine=engine)
        config = uvicorn.Config(app, host=host, port=port, server_header=False)
        # uvicorn configures its loggers when the Config is built: add the filter afterwards.
        for name in ("uvicorn.access", "uvicorn.error"):
            target = logging.getLogger(name)
            if not any(isinstance(f, RedactTokens) for f in target.filters):
                target.addFilter(RedactTokens())
        logger.info(
            "portal listening on http://%s:%d (public URL %s)", host, port, settings.public_url
        )
        uvicorn.Server(config).run()
    finally:
        engine.dispose()
