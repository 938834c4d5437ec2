"""What answers a batch's line, for every kind of batch the runner serves (OpenAI's Batch API,
a family's own: ``Family.batch_routes``): ``Lines``, answered as the request the line stands
for (``http/batch_lines.py``), and what stops a batch's lines. Core: the runner
(``serving/batches/runner.py``) asks it of whatever batch it runs, and the app builds it once
the documents are served (``app/assembly.batch_lines``).

A batch's lines are requests of the key that created it (issue #47: they ran as their
project, after it was archived, and past its spend limit, pushing the organisation past its
own so that another project was refused). Each line is admitted as that key's request would
be when the line starts: the key still let in (not revoked, deleted or expired, still
configured, its project not archived), then the hard spend limits, then the project's
per-model limits (the endpoint's own). A refusal of the key or the spend is ``Refused``; an
``insufficient_quota`` in a line's own answer (an upstream's) counts the same (``ends_batch``).

How such a batch ends. OpenAI's documented statuses keep ``failed`` for a batch whose input
file failed validation (platform.openai.com/docs/guides/batch, "Batch status": "the input
file has failed the validation process"), and limits it checks at validation fail the batch
there with an ``errors`` entry (openai/openai-python#2084 and #1643: ``token_limit_exceeded``,
the enqueued token limit). For a batch already running, the documented way it stops early is
an expiry: what was done is kept and each request that did not run is a line of the error
file (``batch_expired``). No OpenAI source found describes a batch stopped mid-way by its
quota, so a refused batch follows those two rules: it runs no further line, the lines running
finish (they were admitted), each line not answered is answered with the refusal itself - the
429 ``insufficient_quota`` (or 401) its request gets, as the error file carries any refused
request - and the batch completes with them counted as failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import OpenAIError
from ..json.types import Json

if TYPE_CHECKING:
    from ..storage.batches import Claimed


class Refused(Exception):
    """A line its batch's key would not get answered now (the key revoked, its project
    archived, a hard spend limit reached): no further line of the batch runs."""

    def __init__(self, error: OpenAIError) -> None:
        super().__init__(error.message)
        self.status, self.body = error.status, error.body()


class Lines(Protocol):
    """How a line is answered: as the request it stands for (``http/batch_lines.py``)."""

    endpoints: frozenset[str]

    def required(self, endpoint: str) -> list[str]:
        """The body parameters ``endpoint`` requires (from the document)."""
        ...

    async def answer(self, batch: Claimed, body: Json) -> tuple[int, Json, str, float | None]:
        """(status, JSON body, request id, its ``retry-after`` seconds or None) of the line's
        request, made by ``batch``'s creator; ``Refused`` when that request would not be let in."""
        ...


def ends_batch(status: int, answer: Json) -> bool:
    """Whether a line's final answer stops its batch: a spend limit's (OpenAI's own, from an
    upstream, too), which every later line would meet."""
    error = answer.get("error")
    return status == 429 and isinstance(error, dict) and error.get("code") == "insufficient_quota"

