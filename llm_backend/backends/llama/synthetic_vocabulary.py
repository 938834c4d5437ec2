"""A synthetic model's vocabulary: a packaged model's tokenizer, copied into the written GGUF
with the shape's own added tokens and padded to its size (synthetic.py writes the rest).

Two kinds, as the source GGUF holds them (its ``tokenizer.ggml.model``):

- SmolLM2's byte-level BPE (``gpt2``: tokens, types, merges), read with ggml's reader and padded
  with normal tokens, each two of its tokens joined: the embedding, the output layer and
  sampling are the real size, a sampled token reads as text, no prompt tokenizes to one (no
  merge makes it).
- A SentencePiece vocabulary (``llama``: pieces, scores, types, no merges: Gemma 3's 262,144),
  read by llama.cpp's own loader with ``vocab_only`` (0.8 s here, where gguf's reader takes 10 s
  over 262k strings: a numpy view per item), then the shape's added tokens (score -1000,
  control) and ``[PAD<id>]`` pieces up to its size (score -10000, unused), as
  convert_hf_to_gguf.py writes a model whose ``vocab_size`` exceeds its SentencePiece model
  (Gemma 3 4B's 262,208). Its own switches come along: the BOS it adds, no space prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gguf import GGUFWriter, TokenType

from ...settings.shapes import Shape
from .gguf_keys import GGUFKeys

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
NORMAL = 1  # llama.cpp's token type of a plain token
CONTROL = 3  # a special token's: matched in a prompt's text only where special tokens are parsed
ADDED_SCORE, PAD_SCORE = -1000.0, -10000.0  # convert_hf_to_gguf.py's scores for added and padding pieces
SPECIAL_IDS = ("bos", "eos", "unknown", "padding")


class VocabularyError(RuntimeError):
    """A shape whose vocabulary cannot hold its tokenizer's tokens."""


def write_vocabulary(writer: GGUFWriter, shape: Shape, tokenizer_gguf: Path) -> None:
    """The tokenizer's keys, its vocabulary and the shape's chat template, into ``writer``."""
    with GGUFKeys(tokenizer_gguf) as keys:
        sentencepiece = keys.string("tokenizer.ggml.model") == "llama"  # its kind, from the key that names it
        if not sentencepiece:
            _byte_level(writer, shape, keys)
    if sentencepiece:
        _write_sentencepiece(writer, shape, *_sentencepiece(tokenizer_gguf))
    writer.add_chat_template(shape.chat_template or CHATML)


def _check(shape: Shape, count: int, what: str) -> None:
    if count > shape.n_vocab:
        raise VocabularyError(f"synthetic://{shape.name}: its vocabulary ({shape.n_vocab}) is smaller than {what} ({count})")


def _byte_level(writer: GGUFWriter, shape: Shape, keys: GGUFKeys) -> None:
    """SmolLM2's BPE vocabulary, padded with normal tokens to the shape's size."""
    tokens = keys.strings("tokenizer.ggml.tokens")
    types = keys.int32s("tokenizer.ggml.token_type")
    model, pre = keys.string("tokenizer.ggml.model"), keys.string("tokenizer.ggml.pre")
    merges = keys.strings("tokenizer.ggml.merges")
    ids = {key: f"tokenizer.ggml.{key}_token_id" for key in SPECIAL_IDS}
    found = {key: keys.integer(name) for key, name in ids.items() if name in keys}
    _check(shape, len(tokens), "the tokenizer's")
    tokens += shape.added_tokens
    types += [CONTROL] * len(shape.added_tokens)
    _check(shape, len(tokens), "its tokens")
    tokens += padding(tokens, types, shape.n_vocab - len(tokens))
    types += [NORMAL] * (shape.n_vocab - len(types))
    writer.add_tokenizer_model(model)
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    eos = tokens.index(shape.eos_token) if shape.eos_token is not None else None
    _special_ids(writer, found, eos)
    writer.add_add_bos_token(False)


def _special_ids(writer: GGUFWriter, found: dict[str, int], eos: int | None) -> None:
    """The tokenizer's special ids (``found``, by key), but the model's own end of a turn where it has one."""
    if eos is not None:
        found = {**found, "eos": eos}
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
              "unknown": writer.add_unk_token_id, "padding": writer.add_pad_token_id}
    for key in SPECIAL_IDS:
        if key in found:
            adders[key](found[key])


def padding(tokens: list[str], types: list[int], count: int) -> list[str]:
    """``count`` new normal tokens, each two of the vocabulary's normal tokens joined: text a
    sampled token decodes to, never one a prompt tokenizes to (no merge makes it)."""
    normal = [token for token, kind in zip(tokens, types) if kind == NORMAL]
    seen, i = set(tokens), 0
    found: list[str] = []
    while len(found) < count:
        text = normal[i % len(normal)] + normal[(i * 7919 + i // len(normal)) % len(normal)]
        if text not in seen:
            seen.add(text)
            found.append(text)
        i += 1
    return found


# llama.cpp keeps a token's type as attribute bits (llama-vocab.cpp), each type's bit, back to
# it here. Its loader adds bits: control to a control-looking token of another type, unused to a
# control token named "<unused...>" (Gemma's 6,242): those two are read last, so each token
# gets back the type its file gave it (checked against gguf's reader: all 262,144 of Gemma 3's).
_TYPE_OF_ATTRIBUTE = {1 << 4: TokenType.USER_DEFINED, 1 << 5: TokenType.BYTE, 1 << 2: TokenType.NORMAL,
                      1 << 0: TokenType.UNKNOWN, 1 << 3: TokenType.CONTROL, 1 << 1: TokenType.UNUSED}


def _sentencepiece(tokenizer_gguf: Path) -> tuple[list[bytes], list[float], list[int], dict[str, str]]:
    """The GGUF's SentencePiece pieces, scores, types and metadata, read by llama.cpp (its
    vocabulary only)."""
    import llama_cpp
    from llama_cpp import _internals

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = _internals.LlamaModel(path_model=str(tokenizer_gguf), params=params, verbose=False)
    try:
        vocab = model.vocab
        if llama_cpp.llama_vocab_type(vocab) != llama_cpp.LLAMA_VOCAB_TYPE_SPM:
            raise VocabularyError(f"{tokenizer_gguf}: its tokenizer.ggml.model says SentencePiece, llama.cpp reads another kind")
        ids = range(llama_cpp.llama_vocab_n_tokens(vocab))
        tokens = [llama_cpp.llama_vocab_get_text(vocab, i) for i in ids]
        scores = [llama_cpp.llama_vocab_get_score(vocab, i) for i in ids]
        types = [_type(llama_cpp.llama_vocab_get_attr(vocab, i)) for i in ids]
        return tokens, scores, types, model.metadata()
    finally:
        model.close()


def _type(attributes: int) -> int:
    for bit, kind in _TYPE_OF_ATTRIBUTE.items():
        if attributes & bit:
            return int(kind)
    return 0  # undefined


def _write_sentencepiece(
    writer: GGUFWriter, shape: Shape, tokens: list[bytes], scores: list[float], types: list[int], metadata: dict[str, str],
) -> None:
    _check(shape, len(tokens) + len(shape.added_tokens), "its tokens")
    tokens = tokens + [token.encode() for token in shape.added_tokens]
    scores = scores + [ADDED_SCORE] * len(shape.added_tokens)
    types = types + [CONTROL] * len(shape.added_tokens)
    pads = shape.n_vocab - len(tokens)
    tokens += [f"[PAD{i}]".encode() for i in range(len(tokens), shape.n_vocab)]
    scores += [PAD_SCORE] * pads
    types += [int(TokenType.UNUSED)] * pads
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre(metadata.get("tokenizer.ggml.pre", "default"))
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    eos = tokens.index(shape.eos_token.encode()) if shape.eos_token is not None else None
    ids = {key: f"tokenizer.ggml.{key}_token_id" for key in SPECIAL_IDS}
    _special_ids(writer, {key: int(metadata[name]) for key, name in ids.items() if name in metadata}, eos)
    switches: dict[str, Callable[[bool], None]] = {
        "add_bos_token": writer.add_add_bos_token, "add_eos_token": writer.add_add_eos_token,
        "add_sep_token": writer.add_add_sep_token, "add_space_prefix": writer.add_add_space_prefix,
    }
    for key, add in switches.items():  # the tokenizer's own: Gemma's BOS added, no space prefix
        if (value := metadata.get(f"tokenizer.ggml.{key}")) is not None:
            add(value == "true")
