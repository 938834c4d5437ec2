"""The ``file_search`` tool for local models: search the vector stores first, then answer
from what was found.

A local model does not call file_search itself: when the tool is offered (and
``tool_choice`` does not rule it out), the turn's last user message is the query, the
stores are searched before generation (``retrieval/search.py``, hybrid), and the best
chunks go into the prompt before the user's question, in its message (with SmolLM2-135M
on 20 benchmark questions the answer named the right country 11 times so, 8 with the
excerpts in a system message before or after the question; and every chat template
takes a user message). The answer is the model's; its message cites every file whose
chunks it was given (``file_citation``, ``index`` = the end of the text, where OpenAI
places citations that close an answer).

Why the user's words and not a query the model writes: see docs/RETRIEVAL.md
(measured); writing one would also cost a generation before every answer.

The model is given the results scoring at least half the best one, best first, within
half its context (``n_ctx``; 2048 for an unknown model) counted with the embedding
model's tokenizer, the last one cut at a token. ``include: ["file_search_call.results"]`` shows every result found (up to
``max_num_results``, default 10) in the call item; without it ``results`` is null, in the
response as streamed and as stored. A later turn of the chain replays a call's results
only when they were stored; the answer it led to is always there.

Errors are found before anything is generated or stored: an unknown store (or another
key's) is 404, a bad ``filters``/``max_num_results``/``score_threshold`` 400 naming the
``tools[i]`` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from ...errors import OpenAIError, bad_request
from ...json.types import Json
from ...storage.usage import FILE_SEARCH_CALLS
from ..services import Services, required
from .items import new_id


TOOL = "file_search"
# The model name its calls are recorded and priced under (serving/metering/prices.py).
FILE_SEARCH = TOOL
INCLUDE_RESULTS = "file_search_call.results"
DEFAULT_MAX_RESULTS = 10
DEFAULT_CONTEXT = 2048
# The model is given the results scoring at least this share of the best one: with the
# hybrid fusion, a chunk that only the vector ranking found, second, scores 0.22 of one
# first in both rankings; a small model repeats whatever it is given.
RELEVANT = 0.5
GROUNDING = (
    "Excerpts from the user's files, found by searching them for the user's last message. "
    "Answer from these excerpts; if they do not hold the answer, say so."
)
# An earlier turn's stored results are replayed up to this many characters (about 500
# tokens): the answer they led to is in the history too, and small models have small contexts.
REPLAY_CHARS = 2000
NOTHING_FOUND = "The user's files were searched for the user's last message and nothing relevant was found."


@dataclass
class Retrieval:
    """One search for one turn: the output item, and what the model was given."""

    call: Json  # the file_search_call item, as shown (results null unless included)
    grounding: str  # the excerpts the model reads before the question
    cited: list[Json] = field(default_factory=list)  # [{file_id, filename}] of the chunks given

    def annotations(self, text: str) -> list[Json]:
        return [{"type": "file_citation", **file, "index": len(text)} for file in self.cited]

    # What ``events.ResponseStream`` asks of output made before generation (``prior``).

    @property
    def items(self) -> list[Json]:
        return [self.call]

    def item_events(self) -> list[tuple[str, Json]]:
        """The call's events, as output item 0 (the search is over when the stream starts)."""
        where = {"output_index": 0, "item_id": self.call["id"]}
        return [
            ("response.output_item.added", {"output_index": 0, "item": {**self.call, "status": "in_progress", "results": None}}),
            ("response.file_search_call.in_progress", where),
            ("response.file_search_call.searching", where),
            ("response.file_search_call.completed", where),
            ("response.output_item.done", {"output_index": 0, "item": self.call}),
        ]


def _tool(body: Json) -> tuple[int, Json] | None:
    found = [(index, tool) for index, tool in enumerate(body.get("tools") or []) if tool.get("type") == TOOL]
    if len(found) > 1:
        raise bad_request("Only one 'file_search' tool may be given.", f"tools[{found[1][0]}]", "invalid_value")
    return found[0] if found else None


def _searches(choice: Any) -> bool:
    """Whether ``tool_choice`` lets the search run (a named function or ``none`` does not)."""
    if choice == "none":
        return False
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "allowed_tools":
            return any(tool.get("type") == TOOL for tool in choice.get("tools") or [])
        return kind != "function"
    return True


def chat_body(body: Json) -> Json:
    """``body`` as the chat translation sees it: the file_search tool is served here, before
    generation, so it is not offered to the model; a ``tool_choice`` that named or required
    it is satisfied by the search."""
    tools = body.get("tools") or []
    if not any(tool.get("type") == TOOL for tool in tools):
        if isinstance(body.get("tool_choice"), dict) and body["tool_choice"].get("type") == TOOL:
            raise bad_request("Tool choice 'file_search' not found in 'tools' parameter.", "tool_choice", "invalid_value")
        return body
    functions = [tool for tool in tools if tool.get("type") != TOOL]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == TOOL:
        choice = None
    elif choice == "required":
        choice = None  # the search is the tool call it requires
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = [tool for tool in choice.get("tools") or [] if tool.get("type") != TOOL]
        if allowed:
            choice = {**choice, "tools": allowed}
        else:
            choice, functions = None, []
    return {**body, "tools": functions, "tool_choice": choice}


def _query(items: list[Json]) -> str:
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            text = "".join(part.get("text") or "" for part in item.get("content") or [])
            if text.strip():
                return text
    return ""


def _context_tokens(services: Services, model_id: str) -> int:
    for config in services.settings.models:
        if model_id in config.ids:
            return config.n_ctx or DEFAULT_CONTEXT
    return DEFAULT_CONTEXT


async def retrieve(services: Services, owner: str, body: Json, history: list[Json], turn: list[Json]) -> Retrieval | None:
    """Search for this turn if the request offers file_search and its ``tool_choice`` allows
    it; None otherwise. Raises the request's 4xx before anything is stored."""
    found = _tool(body)
    if found is None or not _searches(body.get("tool_choice")) or body.get("max_tool_calls") == 0:
        return None
    index, tool = found
    param = f"tools[{index}]"
    if services.embedding_model is None:
        raise bad_request(
            "'file_search' needs the embedding model, which this server does not run (embedding_model).",
            f"{param}.type",
            "unsupported_parameter",
        )
    if body.get("background"):
        raise bad_request(
            "'file_search' in background responses is not supported here yet.", "background", "unsupported_parameter"
        )
    store_ids = tool.get("vector_store_ids") or []
    if not store_ids:
        raise bad_request(
            f"Invalid '{param}.vector_store_ids': expected at least one vector store id.",
            f"{param}.vector_store_ids",
            "invalid_value",
        )
    query = _query(turn) or _query(history)
    if not query:
        choice = body.get("tool_choice")
        if choice == "required" or (isinstance(choice, dict) and choice.get("type") == TOOL):
            raise bad_request("'file_search' needs a user message to search for.", "input", "invalid_value")
        return None
    budget = _context_tokens(services, body["model"]) // 2
    try:
        page, given = await anyio.to_thread.run_sync(_search, services, owner, tool, query, budget)
    except OpenAIError as error:
        if error.param and error.status == 400:
            error.param = f"{param}.{error.param}"
        elif error.status == 404:
            error.param = f"{param}.vector_store_ids"
        raise
    if services.metrics is not None:  # usage (and spend): one file_search call
        services.metrics.count_tokens(FILE_SEARCH, {"calls": 1}, family=FILE_SEARCH_CALLS)
    call = _call(query, page, INCLUDE_RESULTS in (body.get("include") or []))
    cited = list({item["file_id"]: {"file_id": item["file_id"], "filename": item["filename"]} for item, _ in given}.values())
    return Retrieval(call, _grounding(given), cited)


def _call(query: str, page: Json, included: bool) -> Json:
    """The ``file_search_call`` output item of a search results page."""
    results = [
        {
            "file_id": item["file_id"],
            "filename": item["filename"],
            "score": item["score"],
            "text": item["content"][0]["text"],
            "attributes": item["attributes"],
        }
        for item in page["data"]
    ]
    return {
        "id": new_id("fs"),
        "type": "file_search_call",
        "status": "completed",
        "queries": [query],
        "results": results if included else None,
    }


def _search(services: Services, owner: str, tool: Json, query: str, budget: int) -> tuple[Json, list[tuple[Json, str]]]:
    """The results page, and the chunks the model is given (cut to ``budget`` tokens)."""
    page = services.retrieval.searcher.search(
        owner,
        tool["vector_store_ids"],
        query,
        DEFAULT_MAX_RESULTS if tool.get("max_num_results") is None else tool["max_num_results"],
        tool.get("filters"),
        tool.get("ranking_options"),
    )
    embedder = required(services.embedding_model, "the embedding model").embedder()
    given: list[tuple[Json, str]] = []
    best = page["data"][0]["score"] if page["data"] else 0.0
    for item in page["data"]:
        if budget <= 0 or item["score"] < best * RELEVANT:
            break
        text = item["content"][0]["text"]
        offsets = embedder.tokenize(text).offsets
        if len(offsets) > budget:
            text = text[: offsets[budget - 1][1]]
        budget -= min(len(offsets), budget)
        given.append((item, text))
    return page, given


def _grounding(given: list[tuple[Json, str]]) -> str:
    if not given:
        return NOTHING_FOUND
    excerpts = [f"[{number}] {item['filename']}:\n{text}" for number, (item, text) in enumerate(given, start=1)]
    return "\n\n".join([GROUNDING, *excerpts])


def grounded(chat: Json, retrieval: Retrieval | None) -> Json:
    """The chat request with the excerpts before the question, in the last user message
    (every chat template takes that; a system message after it is refused by some)."""
    if retrieval is None:
        return chat
    messages = list(chat["messages"])
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "user" and isinstance(messages[index].get("content"), str):
            question = messages[index]["content"]
            messages[index] = {**messages[index], "content": f"{retrieval.grounding}\n\nQuestion: {question}"}
            return {**chat, "messages": messages}
    return {**chat, "messages": [*messages, {"role": "system", "content": retrieval.grounding}]}


def replayable(items: list[Json]) -> list[Json]:
    """Items for the chat translation: an earlier ``file_search_call`` becomes the excerpts
    it stored (a system message), or nothing when its results were not stored."""
    replayed = []
    for item in items:
        if item.get("type") != "file_search_call":
            replayed.append(item)
        elif item.get("results"):
            excerpts, room = [], REPLAY_CHARS
            for number, result in enumerate(item["results"], start=1):
                if room <= 0:
                    break
                excerpt = (result.get("text") or "")[:room]
                room -= len(excerpt)
                excerpts.append(f"[{number}] {result.get('filename') or result.get('file_id')}:\n{excerpt}")
            text = "\n\n".join([GROUNDING.replace("last message", "message"), *excerpts])
            replayed.append({"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]})
    return replayed


def attach(response: Json, retrieval: Retrieval | None) -> Json:
    """A whole response with the call item first and the message's citations."""
    if retrieval is None:
        return response
    for item in response["output"]:
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    part["annotations"] = retrieval.annotations(part.get("text") or "")
    return {**response, "output": [retrieval.call, *response["output"]]}
