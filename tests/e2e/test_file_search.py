"""The file_search tool of the Responses API, for the local model: the real SmolLM2, the real
MiniLM embedder, a live server, the official SDK and the Agents SDK.

The searched store is made through the SDK (``vector_stores.create`` +
``files.upload_and_poll`` with attributes); another key's store is written straight into the
server's database by the storage and retrieval layers (the session server has no keys, so
no client could own it), with the real embedder and the same ``index_file`` the indexer uses.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import openai
import pytest

from llm_backend.retrieval.chunking import AUTO
from llm_backend.retrieval.indexing import index_file
from llm_backend.storage import Database, default_url
from tests.conftest import MODEL
from tests.support.clients import answered
from tests.support.embedding import shared_embedder
from tests.support.usage import added, today_usage

FILES = {
    "kettle.md": (
        "# Hydrovex kettle manual\nTo descale the Hydrovex kettle, fill it with one part vinegar and two "
        "parts water, boil it, and let it stand for thirty minutes before rinsing.",
        {"kind": "manual", "year": 2021},
    ),
    "festival.txt": (
        "The Zorblat festival is held every spring in the town of Quendle. During the festival people "
        "paint their doors orange and eat roasted chestnuts.",
        {"kind": "story", "year": 2019},
    ),
    "soup.txt": (
        "Chestnut soup: roast the chestnuts, simmer them with onions and stock for twenty minutes, "
        "then blend until smooth.",
        {"kind": "recipe", "year": 2023},
    ),
}
KETTLE_QUESTION = "How do I descale the Hydrovex kettle?"


@dataclass
class Stores:
    main: str  # holds every file of FILES
    foreign: str  # another owner's store
    file_ids: dict[str, str]  # filename -> file id


@pytest.fixture(scope="module")
def database(server):
    db = Database(default_url(server.workdir / "data"))
    yield db
    db.dispose()


def _foreign_store(database: Database, client: openai.OpenAI, owner: str, name: str) -> str:
    text, attributes = FILES[name]
    index = database.vector_index
    store_id = index.create_store(owner, "another key's store")
    uploaded = client.files.create(file=(name, text.encode()), purpose="assistants")
    index.add_file(owner, store_id, uploaded.id, AUTO.as_openai(), attributes)
    assert index_file(database, shared_embedder(), owner, store_id, uploaded.id, text.encode(), name) == "completed"
    return store_id


@pytest.fixture(scope="module")
def stores(database, client) -> Stores:
    main = client.vector_stores.create(name="file_search tests")
    ids = {}
    for name, (text, attributes) in FILES.items():
        stored = client.vector_stores.files.upload_and_poll(
            vector_store_id=main.id, file=(name, text.encode()), attributes=attributes, poll_interval_ms=100
        )
        assert stored.status == "completed", stored.last_error
        ids[name] = stored.id
    return Stores(main.id, _foreign_store(database, client, "someone-else", "kettle.md"), ids)


def ask(client: openai.OpenAI, stores: Stores, question: str = KETTLE_QUESTION, tool: dict | None = None, **kwargs):
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_output_tokens", 16)
    return client.responses.create(
        input=question, tools=[{"type": "file_search", "vector_store_ids": [stores.main], **(tool or {})}], **kwargs
    )


def _stored_count(database: Database) -> int:
    from sqlalchemy import text

    with database.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM responses")).scalar_one()


def test_a_file_search_answer_is_the_call_then_a_message_citing_the_file_found(client, stores):
    response = ask(client, stores)
    call, message = response.output
    assert call.type == "file_search_call" and call.id.startswith("fs_") and call.status == "completed"
    assert call.queries == [KETTLE_QUESTION] and call.results is None
    assert message.type == "message" and message.content[0].text
    [citation] = message.content[0].annotations
    assert (citation.type, citation.file_id, citation.filename) == ("file_citation", stores.file_ids["kettle.md"], "kettle.md")
    assert citation.index == len(message.content[0].text)


def test_each_file_search_call_counts_in_the_usage_operations(server, client, stores):
    before = today_usage(server, "file_search_calls")
    ask(client, stores)
    assert added(server, "file_search_calls", before, lambda d: d.get("num_requests", 0) >= 1)["num_requests"] == 1


def test_include_results_shows_the_chunks_found_best_first(client, stores):
    response = ask(client, stores, include=["file_search_call.results"])
    results = response.output[0].results
    assert results[0].file_id == stores.file_ids["kettle.md"] and "vinegar" in results[0].text
    assert results[0].filename == "kettle.md" and results[0].attributes == {"kind": "manual", "year": 2021}
    scores = [result.score for result in results]
    assert scores == sorted(scores, reverse=True) and all(0 <= score <= 1 for score in scores)


def test_hybrid_search_weights_are_honoured(client, stores):
    """``ranking_options.hybrid_search`` (accepted and ignored before): a text weight of 0
    is a vector-only search, an embedding weight of 0 a keyword-only one, so a question
    sharing no word with the files finds the kettle manual by meaning only."""
    question = "Removing limescale from appliances"  # no word of it is in any file

    def results(embedding_weight, text_weight):
        options = {"hybrid_search": {"embedding_weight": embedding_weight, "text_weight": text_weight}}
        answer = ask(client, stores, question, {"ranking_options": options}, include=["file_search_call.results"])
        return answer.output[0].results

    by_meaning = results(1, 0)
    assert by_meaning and by_meaning[0].file_id == stores.file_ids["kettle.md"]
    assert results(0, 1) == []
    with pytest.raises(openai.BadRequestError) as caught:
        results(-1, 1)
    assert caught.value.body["param"] == "tools[0].ranking_options.hybrid_search.embedding_weight"


def test_a_streamed_file_search_sends_the_call_events_before_the_message(client, stores):
    events = list(ask(client, stores, stream=True, include=["file_search_call.results"]))
    kinds = [event.type for event in events]
    assert kinds[:7] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    call_id = events[2].item.id
    assert events[2].item.type == "file_search_call" and events[2].item.status == "in_progress"
    assert all(event.item_id == call_id and event.output_index == 0 for event in events[3:6])
    assert kinds[7] == "response.output_item.added" and events[7].output_index == 1
    [added] = [event for event in events if event.type == "response.output_text.annotation.added"]
    assert added.annotation.file_id == stores.file_ids["kettle.md"] and added.output_index == 1
    assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")
    final = events[-1].response
    assert final.output[0].results[0].file_id == stores.file_ids["kettle.md"]
    # The stored response is the streamed one.
    assert client.responses.retrieve(final.id).model_dump() == final.model_dump()


def test_filters_select_the_files_searched(client, stores):
    response = ask(
        client,
        stores,
        tool={"filters": {"type": "eq", "key": "kind", "value": "story"}},
        include=["file_search_call.results"],
    )
    assert {result.file_id for result in response.output[0].results} == {stores.file_ids["festival.txt"]}


def test_a_compound_filter_on_numbers_is_honoured(client, stores):
    flt = {"type": "and", "filters": [{"type": "gte", "key": "year", "value": 2020}, {"type": "ne", "key": "kind", "value": "manual"}]}
    response = ask(client, stores, "chestnuts", tool={"filters": flt}, include=["file_search_call.results"])
    assert {result.filename for result in response.output[0].results} == {"soup.txt"}


def test_max_num_results_bounds_the_results(client, stores):
    response = ask(client, stores, "chestnuts", tool={"max_num_results": 1}, include=["file_search_call.results"])
    assert len(response.output[0].results) == 1


def test_an_unknown_vector_store_is_404_and_nothing_is_stored(client, stores, database):
    before = _stored_count(database)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, input="hi", tools=[{"type": "file_search", "vector_store_ids": ["vs_nope"]}])
    assert caught.value.body["param"] == "tools[0].vector_store_ids" and "vs_nope" in caught.value.body["message"]
    assert _stored_count(database) == before


def test_another_keys_vector_store_is_not_found(client, stores, database):
    before = _stored_count(database)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="hi", tools=[{"type": "file_search", "vector_store_ids": [stores.foreign]}])
    assert _stored_count(database) == before


def test_a_malformed_filter_is_400_naming_the_tool_parameter(client, stores, database):
    before = _stored_count(database)
    with pytest.raises(openai.BadRequestError) as caught:
        # Valid JSON for the spec ('value' may be a string), not for 'in'.
        ask(client, stores, tool={"filters": {"type": "in", "key": "kind", "value": "manual"}})
    assert caught.value.body["param"] == "tools[0].filters.value"
    assert _stored_count(database) == before


def test_tool_choice_none_answers_without_searching(client, stores):
    response = ask(client, stores, tool_choice="none")
    assert [item.type for item in response.output] == ["message"]


def test_max_tool_calls_zero_answers_without_searching(client, stores):
    response = ask(client, stores, max_tool_calls=0)
    assert [item.type for item in response.output] == ["message"]


def test_tool_choice_naming_file_search_searches(client, stores):
    response = ask(client, stores, "chestnuts", tool_choice={"type": "file_search"})
    assert response.output[0].type == "file_search_call"


def test_a_chain_after_a_file_search_continues_and_lists_its_input(client, stores):
    first = ask(client, stores, include=["file_search_call.results"])
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input="Say it shorter.", max_output_tokens=16)
    assert second.status in ("completed", "incomplete") and second.output[0].type == "message"
    assert [item.type for item in client.responses.input_items.list(second.id)] == ["message"]


def test_output_items_sent_back_as_input_are_accepted(client, stores):
    first = ask(client, stores)
    history = [{"role": "user", "content": KETTLE_QUESTION}, *(item.model_dump(exclude_none=True) for item in first.output)]
    second = client.responses.create(model=MODEL, input=[*history, {"role": "user", "content": "Thanks!"}], max_output_tokens=16)
    assert second.output[-1].type == "message"
    listed = [item.type for item in client.responses.input_items.list(second.id, order="asc")]
    assert listed == ["message", "file_search_call", "message", "message"]


def test_the_agents_sdk_file_search_tool_gets_a_call_and_an_answer(server, stores):
    from agents import Agent, FileSearchTool, ModelSettings, OpenAIResponsesModel, RunConfig, Runner
    from agents.items import ToolCallItem

    async def run():
        client = openai.AsyncOpenAI(base_url=server.api, api_key="anything", max_retries=0)
        agent = Agent(
            name="manuals",
            instructions="Answer in one short sentence.",
            model=OpenAIResponsesModel(MODEL, client),
            model_settings=ModelSettings(max_tokens=96, temperature=0),
            tools=[FileSearchTool(vector_store_ids=[stores.main], max_num_results=3, include_search_results=True)],
        )
        return await Runner.run(agent, KETTLE_QUESTION, run_config=RunConfig(tracing_disabled=True))

    result = asyncio.run(answered(run))
    [call] = [item for item in result.new_items if isinstance(item, ToolCallItem)]
    assert call.raw_item.type == "file_search_call"
    assert call.raw_item.results[0].file_id == stores.file_ids["kettle.md"]
    assert isinstance(result.final_output, str) and result.final_output
