"""file_search's translation for the chat request: which tool_choice searches, what the
model is offered, where the excerpts go, how an earlier call is replayed."""

from __future__ import annotations

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.serving.responses import file_search
from llm_backend.serving.responses.file_search import Retrieval

FILE_SEARCH = {"type": "file_search", "vector_store_ids": ["vs_1"]}
FUNCTION = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    "choice, searches",
    [
        (None, True),
        ("auto", True),
        ("required", True),
        ({"type": "file_search"}, True),
        ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "file_search"}]}, True),
        ("none", False),
        ({"type": "function", "name": "lookup"}, False),
        ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "lookup"}]}, False),
    ],
)
def test_tool_choice_decides_whether_the_stores_are_searched(choice, searches):
    assert file_search._searches(choice) is searches


def test_the_model_is_offered_the_function_tools_only():
    body = file_search.chat_body({"tools": [FILE_SEARCH, FUNCTION], "tool_choice": "auto"})
    assert body["tools"] == [FUNCTION] and body["tool_choice"] == "auto"


@pytest.mark.parametrize("choice", ["required", {"type": "file_search"}])
def test_a_choice_the_search_satisfies_leaves_the_model_free(choice):
    assert file_search.chat_body({"tools": [FILE_SEARCH, FUNCTION], "tool_choice": choice})["tool_choice"] is None


def test_allowed_tools_keep_their_functions_and_lose_file_search():
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "file_search"}, {"type": "function", "name": "lookup"}]}
    body = file_search.chat_body({"tools": [FILE_SEARCH, FUNCTION], "tool_choice": choice})
    assert body["tool_choice"]["tools"] == [{"type": "function", "name": "lookup"}]
    only = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "file_search"}]}
    assert file_search.chat_body({"tools": [FILE_SEARCH, FUNCTION], "tool_choice": only})["tools"] == []


def test_naming_file_search_without_the_tool_is_refused():
    with pytest.raises(OpenAIError) as raised:
        file_search.chat_body({"tools": [FUNCTION], "tool_choice": {"type": "file_search"}})
    assert (raised.value.status, raised.value.param) == (400, "tool_choice")


def test_two_file_search_tools_are_refused():
    with pytest.raises(OpenAIError) as raised:
        file_search._tool({"tools": [FILE_SEARCH, FILE_SEARCH]})
    assert raised.value.param == "tools[1]"


def test_the_excerpts_go_before_the_question_in_the_last_user_message():
    retrieval = Retrieval({"id": "fs_1"}, "EXCERPTS")
    chat = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}]}
    messages = file_search.grounded(chat, retrieval)["messages"]
    assert messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "EXCERPTS\n\nQuestion: Why?"}]
    assert chat["messages"][1]["content"] == "Why?"  # the request's own messages are left alone


def test_each_file_given_is_cited_once_at_the_end_of_the_text():
    retrieval = Retrieval({"id": "fs_1"}, "", [{"file_id": "file-a", "filename": "a.txt"}])
    assert retrieval.annotations("Done.") == [{"type": "file_citation", "file_id": "file-a", "filename": "a.txt", "index": 5}]


def test_an_earlier_call_is_replayed_with_its_stored_results_only():
    with_results = {"type": "file_search_call", "results": [{"filename": "a.txt", "text": "§" * 5000}]}
    without = {"type": "file_search_call", "results": None}
    [replayed] = file_search.replayable([with_results, without])
    text = replayed["content"][0]["text"]
    assert replayed["role"] == "system" and "a.txt" in text and text.count("§") == file_search.REPLAY_CHARS
