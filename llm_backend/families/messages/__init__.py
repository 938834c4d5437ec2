"""Anthropic's Messages API (docs/MESSAGES.md), one family in one folder: its document joined
beside OpenAI's (``document.py``, ``openapi/anthropic.yaml``), its controllers
(``controller.py``: tags ``Messages`` and ``Message Batches``), the Messages request made
the service's chat request and its answer made Anthropic's, Message Batches on the batch
runner, an Anthropic upstream's answers passed through and metered (``serving/``), Anthropic's
error shape for its clients (``errors.py``, ``middleware.py``), the Message Batches' store
(``store.py``, in the batch tables), the upstream kind ``api: anthropic`` (``backend.py``),
and its page (``/docs/anthropic.json``). Registered by ``FAMILY`` below, one line in
``families.FAMILIES``."""

from __future__ import annotations

from llm_backend.families.family import Document, Family, Joined, Middleware
from llm_backend.spec.loader import ANTHROPIC_SPEC

NAME = "messages"
CONTROLLER = f"{__name__}.controller"


# The hooks import their modules when the app is built: the registry is read by the command
# line too (``db upgrade``: the families' migrations), without the web stack.
def _joined(openai: dict, own: dict) -> dict:
    from .document import joined

    return joined(openai, own)


def _batch_routes(served) -> dict:
    from .document import batch_routes

    return batch_routes(served.specification)


def _middleware(_) -> list[Middleware]:
    """Anthropic's clients get Anthropic's errors, whichever layer below answers one."""
    from .middleware import AnthropicErrors

    return [(AnthropicErrors, {})]


def _pages(served) -> dict[str, Document]:
    from llm_backend.spec import docs

    own = served.documents[NAME]
    return {"anthropic.json": ("Anthropic Messages API: the operations served here", lambda: docs.as_json(own))}


FAMILY = Family(
    NAME,
    controllers={"Messages": CONTROLLER, "Message Batches": CONTROLLER},
    joined=Joined(ANTHROPIC_SPEC, _joined),  # openapi/anthropic.yaml, beside OpenAI's
    middleware=_middleware,
    batch_routes=_batch_routes,
    upstreams={"anthropic": f"{__name__}.backend:AnthropicBackend"},
    pages=_pages,
)
