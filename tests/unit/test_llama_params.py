"""OpenAI request bodies to local-engine parameters: what is refused, what is filled in,
and what the output must parse as."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama.params import (
    OPENAI_SAMPLING,
    chat_params,
    completion_params,
    embedding_inputs,
)
from llm_backend.errors import OpenAIError

N_CTX = 512
HI = [{"role": "user", "content": "hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def chat(**request) -> dict:
    return chat_params({"messages": HI, **request}, N_CTX)


def refused(call, *args, **kwargs) -> OpenAIError:
    with pytest.raises(OpenAIError) as raised:
        call(*args, **kwargs)
    assert raised.value.status == 400
    return raised.value


# What local models cannot honour is refused, naming the parameter.


@pytest.mark.parametrize(
    "param, value",
    [
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("web_search_options", {}),
        ("verbosity", "high"),
        ("functions", [{"name": "f"}]),
        ("function_call", "auto"),
    ],
)
def test_a_chat_parameter_local_models_cannot_honour_is_refused_naming_it(param, value):
    error = refused(chat, **{param: value})
    assert error.param == param and error.code == "unsupported_parameter"


@pytest.mark.parametrize("param, value", [("modalities", ["text"]), ("reasoning_effort", "none"), ("verbosity", "medium")])
def test_values_that_change_nothing_are_accepted(param, value):
    assert chat(**{param: value})["messages"]


def test_an_assistant_messages_reasoning_content_is_kept_for_the_template():
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!", "reasoning_content": "A greeting."}]
    assert chat_params({"messages": messages}, N_CTX)["messages"][1]["reasoning_content"] == "A greeting."


def test_reasoning_effort_is_left_to_the_models_reasoning_family():
    # Refused or honoured once the loaded model's family is known (reasoning/, backend.py).
    assert chat(reasoning_effort="high")["reasoning_effort"] == "high"


def test_an_image_content_part_is_refused_naming_its_place():
    content = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:,"}}]
    error = refused(chat_params, {"messages": [{"role": "user", "content": content}]}, N_CTX)
    assert error.param == "messages[0].content[1].type"


def test_a_deprecated_function_message_is_refused_naming_it():
    messages = [*HI, {"role": "function", "name": "f", "content": "1"}]
    assert refused(chat_params, {"messages": messages}, N_CTX).param == "messages[1]"


@pytest.mark.parametrize("param, value", [("best_of", 3), ("suffix", "end")])
def test_a_completion_parameter_local_models_cannot_honour_is_refused_naming_it(param, value):
    assert refused(completion_params, {"prompt": "x", param: value}, N_CTX).param == param


def test_best_of_equal_to_n_is_accepted():
    assert completion_params({"prompt": "x", "best_of": 2, "n": 2}, N_CTX)["n"] == 2


def test_top_logprobs_without_logprobs_is_refused():
    assert refused(chat, top_logprobs=3).param == "top_logprobs"


def test_logit_bias_keys_that_are_not_token_ids_are_refused():
    assert refused(chat, logit_bias={"hello": 5}).param == "logit_bias"


# Messages.


def test_the_developer_role_becomes_the_system_role():
    params = chat_params({"messages": [{"role": "developer", "content": "be brief"}, *HI]}, N_CTX)
    assert params["messages"][0] == {"role": "system", "content": "be brief"}


def test_text_parts_are_joined_into_one_string():
    content = [{"type": "text", "text": "one "}, {"type": "text", "text": "two"}]
    params = chat_params({"messages": [{"role": "user", "content": content}]}, N_CTX)
    assert params["messages"][0]["content"] == "one two"


# Sampling.


def test_openai_sampling_defaults_apply_when_the_request_leaves_them_out():
    params = chat()
    assert {name: params[name] for name in OPENAI_SAMPLING} == {
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "repeat_penalty": 1.0,
    }
    assert (params["n"], params["stop"], params["stream"], params["include_usage"]) == (1, [], False, False)


def test_sampling_values_of_the_request_are_passed_on():
    params = chat(temperature=0.3, top_p=0.5, seed=7, presence_penalty=1.0, frequency_penalty=-1.0, n=2)
    assert (params["temperature"], params["top_p"], params["seed"]) == (0.3, 0.5, 7)
    assert (params["presence_penalty"], params["frequency_penalty"], params["n"]) == (1.0, -1.0, 2)


def test_a_single_stop_string_becomes_a_list():
    assert chat(stop="END")["stop"] == ["END"]


def test_logit_bias_keys_become_integer_token_ids():
    assert chat(logit_bias={"42": 5})["logit_bias"] == {42: 5.0}


def test_integral_floats_of_integer_parameters_become_ints():
    params = chat(seed=3.0, n=2.0, max_tokens=5.0)
    assert (params["seed"], params["n"], params["max_tokens"]) == (3, 2, 5)
    assert all(type(params[name]) is int for name in ("seed", "n", "max_tokens"))


def test_stream_options_include_usage_is_passed_on():
    assert chat(stream=True, stream_options={"include_usage": True})["include_usage"] is True


# Completion length.


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_a_completion_length_below_one_is_refused_in_openais_words(param):
    error = refused(chat, **{param: -1})
    assert error.param == param and error.code == "integer_below_min_value"
    assert error.message == f"Invalid '{param}': integer below minimum value. Expected a value >= 1, but got -1 instead."


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_a_completion_length_beyond_the_context_is_refused_in_openais_words_where_the_model_says_so(param):
    error = refused(chat_params, {"messages": HI, param: 1_000_000_000}, N_CTX, "refuse")
    assert error.param == param and error.code == "invalid_value"
    assert error.message == (
        f"{param} is too large: 1000000000. This model supports at most {N_CTX} completion tokens, "
        "whereas you provided 1000000000."
    )


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_a_completion_length_beyond_the_context_goes_to_the_engine_to_be_fitted_by_default(param):
    params = chat(**{param: 32000})  # opencode's and Qwen Code's default (issue #49)
    assert params["max_tokens"] == 32000 and params["max_tokens_param"] == param
    assert params["refuse_beyond_context"] is False


def test_a_completion_length_of_the_whole_context_is_accepted():
    assert chat(max_tokens=N_CTX)["max_tokens"] == N_CTX


def test_max_completion_tokens_wins_over_max_tokens():
    assert chat(max_tokens=5, max_completion_tokens=9)["max_tokens"] == 9


def test_no_completion_length_means_no_bound():
    assert chat()["max_tokens"] is None


def test_completions_default_to_16_tokens_when_max_tokens_is_null():
    assert completion_params({"prompt": "x", "max_tokens": None}, N_CTX)["max_tokens"] == 16


def test_completions_accept_max_tokens_zero_to_score_a_prompt():
    assert completion_params({"prompt": "x", "max_tokens": 0, "echo": True}, N_CTX)["max_tokens"] == 0


def test_completions_refuse_max_tokens_beyond_the_context_where_the_model_says_so():
    assert refused(completion_params, {"prompt": "x", "max_tokens": N_CTX + 1}, N_CTX, False, "refuse").param == "max_tokens"
    assert completion_params({"prompt": "x", "max_tokens": N_CTX + 1}, N_CTX)["max_tokens"] == N_CTX + 1  # fitted by the engine


# Tools and tool_choice.


def test_offered_tools_go_to_the_engine_beside_the_messages_without_forcing_a_call():
    # The engine writes them for the model in its own format (tests/unit/test_tool_formats.py).
    params = chat(tools=[WEATHER])
    assert params["tools"] == [WEATHER] and params["tool_choice"] == "auto" and params["messages"] == HI
    assert params["structure"] is None and params["tool_names"] == ["get_weather"]


def test_history_calls_reach_the_engine_as_openai_sent_them():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    history = [*HI, {"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_1", "content": "18C"}]
    messages = chat_params({"messages": history, "tools": [WEATHER]}, N_CTX)["messages"]
    assert messages[1] == {"role": "assistant", "content": "", "tool_calls": [call]}
    assert messages[2] == {"role": "tool", "content": "18C", "tool_call_id": "call_1"}


def test_tool_choice_required_forces_parallel_calls_of_the_offered_tools():
    structure = chat(tools=[WEATHER, TIME], tool_choice="required")["structure"]
    assert structure == {"kind": "tool_calls", "tools": [WEATHER, TIME], "parallel": True}


def test_parallel_tool_calls_false_forces_one_call():
    assert chat(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)["structure"]["parallel"] is False


def test_a_named_tool_choice_forces_one_call_of_that_function_only():
    params = chat(tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert params["structure"] == {"kind": "tool_calls", "tools": [TIME], "parallel": False}
    assert params["tool_names"] == ["get_time"]


def test_tool_choice_none_offers_no_tools():
    params = chat(tools=[WEATHER], tool_choice="none")
    assert params["tool_names"] == [] and params["structure"] is None and params["messages"] == HI


def test_a_tool_choice_naming_an_absent_tool_is_refused():
    error = refused(chat, tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}})
    assert error.param == "tool_choice"


def test_a_tool_choice_without_tools_is_refused():
    assert refused(chat, tool_choice="required").param == "tool_choice"


def test_a_tool_that_is_not_a_function_is_refused_naming_it():
    assert refused(chat, tools=[WEATHER, {"type": "custom", "custom": {"name": "x"}}]).param == "tools[1].type"


@pytest.mark.parametrize("parameters", [{"type": "nonsense"}, {"properties": []}, {"required": "city"}])
def test_tool_parameters_that_are_no_json_schema_are_refused_naming_them(parameters):
    bad = {"type": "function", "function": {"name": "bad", "parameters": parameters}}
    error = refused(chat, tools=[WEATHER, bad])
    assert error.param == "tools[1].function.parameters" and error.code == "invalid_function_parameters"
    assert "Invalid schema for function 'bad'" in error.message


# response_format.


def test_json_object_format_asks_for_json():
    assert chat(response_format={"type": "json_object"})["structure"] == {"kind": "json_object"}


def test_json_schema_format_carries_the_schema():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    assert chat(response_format=response_format)["structure"] == {"kind": "json_schema", "schema": schema}


def test_a_json_schema_format_schema_that_is_no_json_schema_is_refused_naming_it():
    response_format = {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "nonsense"}}}
    error = refused(chat, response_format=response_format)
    assert error.param == "response_format.json_schema.schema"
    assert "Invalid schema for response_format 'out'" in error.message


def test_a_schema_nested_too_deeply_to_check_is_refused_not_a_server_error():
    schema: dict = {}
    inner = schema
    for _ in range(2000):
        inner["items"] = {}
        inner = inner["items"]
    response_format = {"type": "json_schema", "json_schema": {"name": "deep", "schema": schema}}
    error = refused(chat, response_format=response_format)
    assert error.param == "response_format.json_schema.schema" and "nested too deeply" in error.message


def test_text_format_asks_for_nothing():
    assert chat(response_format={"type": "text"})["structure"] is None


def test_a_response_format_with_a_forced_tool_call_is_refused():
    error = refused(chat, tools=[WEATHER], tool_choice="required", response_format={"type": "json_object"})
    assert error.param == "response_format"


# Prompts and embedding inputs.


@pytest.mark.parametrize(
    "prompt, prompts",
    [
        ("hello", ["hello"]),
        ([1, 2, 3], [[1, 2, 3]]),
        (["a", "b"], ["a", "b"]),
        ([[1, 2], [3.0]], [[1, 2], [3]]),
        (None, [""]),
    ],
)
def test_every_prompt_form_becomes_a_list_of_prompts(prompt, prompts):
    # A model's own ids (token_ids: native): OpenAI's are read as text (test_openai_tokens.py).
    assert completion_params({"prompt": prompt}, N_CTX, native=True)["prompts"] == prompts


def test_an_empty_prompt_list_is_refused():
    assert refused(completion_params, {"prompt": []}, N_CTX).param == "prompt"


def test_completion_logprobs_ask_for_that_many_top_logprobs():
    params = completion_params({"prompt": "x", "logprobs": 2}, N_CTX)
    assert (params["logprobs"], params["top_logprobs"]) == (True, 2)


@pytest.mark.parametrize(
    "value, inputs",
    [("hello", ["hello"]), ([5, 6], [[5, 6]]), (["a", "b"], ["a", "b"]), ([[5], [6.0]], [[5], [6]])],
)
def test_every_embedding_input_form_becomes_a_list_of_inputs(value, inputs):
    assert embedding_inputs({"input": value}, native=True) == inputs


def test_an_empty_embedding_input_list_is_refused():
    assert refused(embedding_inputs, {"input": []}).param == "input"


def test_embedding_dimensions_are_left_to_the_engine_that_knows_the_size():
    assert embedding_inputs({"input": "x", "dimensions": 576}) == ["x"]


def test_a_chat_with_more_messages_than_the_context_has_tokens_is_refused_before_rendering():
    from llm_backend.backends.llama.params import chat_params

    request = {"model": "m", "messages": [{"role": "user", "content": "x"}] * 3000}
    with pytest.raises(OpenAIError) as raised:
        chat_params(request, n_ctx=2048)
    assert (raised.value.code, raised.value.param) == ("context_length_exceeded", "messages")


def test_a_prompt_far_longer_than_the_context_is_refused_before_tokenizing():
    from llm_backend.backends.llama.params import completion_params

    with pytest.raises(OpenAIError) as raised:
        completion_params({"model": "m", "prompt": "word " * 100_000}, n_ctx=2048)
    assert (raised.value.code, raised.value.param) == ("context_length_exceeded", "prompt")


def test_a_custom_tool_call_in_the_history_is_refused_naming_it():
    from llm_backend.backends.llama.params import chat_params

    history = [{"role": "assistant", "content": None, "tool_calls": [{"type": "custom", "id": "c", "custom": {"name": "x", "input": ""}}]}]
    with pytest.raises(OpenAIError) as raised:
        chat_params({"model": "m", "messages": history}, n_ctx=2048)
    assert raised.value.param == "messages[0].tool_calls[0].type"


@pytest.mark.parametrize("bias", [101, -100.5])
def test_a_logit_bias_outside_plus_minus_100_is_refused(bias):
    from llm_backend.backends.llama.params import chat_params

    with pytest.raises(OpenAIError) as raised:
        chat_params({"model": "m", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": bias}}, n_ctx=2048)
    assert raised.value.param == "logit_bias"


def test_repetitions_past_the_grammars_budget_are_left_to_the_engine():
    # Issue #49: Claude Code's Workflow tool; the engine rewrites them (schema_bounds.py).
    workflow = {"type": "function", "function": {"name": "Workflow", "parameters": {
        "type": "object", "properties": {"script": {"type": "string", "maxLength": 524288}}}}}
    params = chat(tools=[workflow], tool_choice="required")
    assert params["structure"]["tools"] == [workflow]
    schema = {"type": "array", "maxItems": 100000}
    response_format = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}
    assert chat(response_format=response_format)["structure"] == {"kind": "json_schema", "schema": schema, "strict": True}
