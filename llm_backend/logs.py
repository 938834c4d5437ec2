"""Structured logs: one JSON object per line, with the request id of the request being served.

Standard-library loggers (ours, uvicorn's) are rendered by structlog, so everything that
reaches stderr has the same shape. Nothing here ever logs headers or bodies: keys stay out.
"""

from __future__ import annotations

import logging
import sys

import structlog


class ConnexionProblems(logging.Filter):
    """Connexion logs the request problems it answers (a body or parameter that does not
    validate, a key it refuses) at warning or error: those are client mistakes, and an
    operator's error log must hold only our faults. Its records without a traceback go out
    at info; every server fault is logged by our own error handlers (``errors.answered``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("connexion") and record.levelno > logging.INFO and not record.exc_info:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def configure(level: str = "INFO", json: bool = True) -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(ConnexionProblems())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our access log line replaces uvicorn's; httpx's line per upstream request repeats it
    # (and would cost the proxy path a log record per request).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("httpx", "httpcore", "httpx2", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # The MCP client's own lines name a client's server URL (a query may hold a token) and log
    # a remote server's failures as errors with tracebacks: they are the client's to see, as
    # typed errors, and mcp/connector.py logs one line per failure without the URL's secrets.
    logging.getLogger("mcp").setLevel(logging.CRITICAL)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
