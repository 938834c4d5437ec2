"""Per-sequence sampling with OpenAI's semantics, on llama.cpp's sampler chains.

The chain, in order: logit_bias, presence/frequency penalties (llama.cpp's penalties sampler
subtracts ``count * frequency + (count > 0) * presence``, exactly OpenAI's formula), grammar,
then greedy at temperature 0, else top_k, temperature, top_p, min_p and a seeded draw (top_k,
min_p and repeat_penalty are llama.cpp's extensions; OpenAI's requests leave them off). Every sequence has
its own chain, so one request's seed or grammar never touches another's.

A choice whose drafts are verified (drafts.py) and that samples (temperature > 0) draws
itself, from the distribution the chain leaves without its last stage (the seeded draw):
verifying a draft needs the probability of the drafted token, not only a draw.

A greedy chain with nothing before its argmax (no bias, penalty or grammar: ``argmax``) is
not run at all: the step's such rows are read in one argmax over their logits
(``argmax_rows``), the token llama.cpp's greedy sampler picks (the first of equal logits, as
numpy's), without the 49,152-entry candidates array the sampler builds a row. 8 rows on these
cores, loaded: 1,354 us through the sampler, 97 us in one argmax; the sampler's time sits
between two decodes, where a GPU waits for it (issue #57: a GPU step of 8 rows is 2.5 ms).
"""

from __future__ import annotations

import ctypes
import random
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaTokenDataArray

from .errors import RequestError


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    grammar: str | None = None
    logprobs: bool = False
    top_logprobs: int = 0

    @classmethod
    def from_request(cls, params: dict[str, Any], n_vocab: int) -> "SamplingParams":
        bias = {int(token): float(value) for token, value in (params.get("logit_bias") or {}).items()}
        invalid = sorted(token for token in bias if not 0 <= token < n_vocab)
        if invalid:
            raise RequestError(
                400,
                f"'logit_bias' has token ids outside this model's vocabulary (0..{n_vocab - 1}): {invalid[:5]}.",
                "logit_bias",
                "invalid_value",
            )
        return cls(
            temperature=float(params.get("temperature", 1.0)),
            top_p=float(params.get("top_p", 1.0)),
            seed=params.get("seed"),
            presence_penalty=float(params.get("presence_penalty") or 0.0),
            frequency_penalty=float(params.get("frequency_penalty") or 0.0),
            repeat_penalty=float(params.get("repeat_penalty") or 1.0),
            top_k=int(params.get("top_k") or 0),
            min_p=float(params.get("min_p") or 0.0),
            logit_bias=bias,
            grammar=params.get("grammar"),
            logprobs=bool(params.get("logprobs")),
            top_logprobs=int(params.get("top_logprobs") or 0),
        )


class Sampler:
    """One sequence's llama_sampler chain; choice ``index`` draws with ``seed + index``."""

    def __init__(self, params: SamplingParams, model: Any, n_ctx: int, index: int, drafts: bool = False) -> None:
        self.rng: np.random.Generator | None = None  # set when this sampler draws itself
        # Greedy with nothing before it: the row's argmax is its token (``argmax_rows``).
        self.argmax = params.temperature <= 0 and not (
            params.logit_bias or params.grammar or params.presence_penalty or params.frequency_penalty
            or params.repeat_penalty != 1.0
        )
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        vocab = model.vocab
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        if params.logit_bias:
            biases = (llama_cpp.llama_logit_bias * len(params.logit_bias))()
            for i, (token, bias) in enumerate(params.logit_bias.items()):
                biases[i].token, biases[i].bias = token, bias  # type: ignore[assignment]  # ctypes converts
            self._add(llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(params.logit_bias), biases))
        if params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1.0:
            self._add(
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab, n_ctx, params.repeat_penalty, params.frequency_penalty, params.presence_penalty
                )
            )
        if params.grammar:
            grammar = llama_cpp.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
            if not grammar:
                raise RequestError(400, "The grammar could not be parsed.", "grammar", "invalid_value")
            self._add(grammar)
        if params.temperature <= 0:
            self._add(llama_cpp.llama_sampler_init_greedy())
        else:
            seed = params.seed if params.seed is not None else random.getrandbits(32)
            if params.top_k > 0:
                self._add(llama_cpp.llama_sampler_init_top_k(params.top_k))
            self._add(llama_cpp.llama_sampler_init_temp(params.temperature))
            if params.top_p < 1.0:
                self._add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p > 0.0:
                self._add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
            if drafts:
                self.rng = np.random.default_rng((seed + index) & 0xFFFFFFFF)
                self.candidates = LlamaTokenDataArray(n_vocab=n_vocab)
            else:
                self._add(llama_cpp.llama_sampler_init_dist((seed + index) & 0xFFFFFFFF))

    def _add(self, sampler: Any) -> None:
        llama_cpp.llama_sampler_chain_add(self.chain, sampler)

    def sample(self, ctx: Any, batch_index: int) -> int:
        """Draw the next token from the logits at ``batch_index`` (and accept it)."""
        if self.rng is None:
            return llama_cpp.llama_sampler_sample(self.chain, ctx, batch_index)
        ids, probs = self._distribution(ctx, batch_index)
        return self._accept(int(self.rng.choice(ids, p=probs)))

    def verify(self, ctx: Any, batch_index: int, draft: int) -> int:
        """The next token from the logits at ``batch_index``, ``draft`` having been proposed
        for it (and accept it). Greedy: the argmax, whatever the draft. Sampling: speculative
        sampling's rule with the draft as a point mass q: the draft is taken with probability
        min(1, p/q) = p(draft), else a token is drawn from the residual max(0, p - q), i.e. p
        without the draft. Either way the token follows p exactly."""
        if self.rng is None:
            return self.sample(ctx, batch_index)
        ids, probs = self._distribution(ctx, batch_index)
        drafted = ids == draft
        p = float(probs[drafted].sum())
        if self.rng.random() < p:
            return self._accept(draft)
        rest = np.where(drafted, 0.0, probs)
        return self._accept(int(self.rng.choice(ids, p=rest / rest.sum())))

    def _distribution(self, ctx: Any, batch_index: int) -> tuple[np.ndarray, np.ndarray]:
        """The tokens the chain leaves possible at ``batch_index``, and their probabilities."""
        candidates = self.candidates
        candidates.copy_logits(logits_at(ctx, batch_index, len(candidates.candidates_data)))
        llama_cpp.llama_sampler_apply(self.chain, ctypes.byref(candidates.candidates))
        array = candidates.candidates
        # The chain sorts and shrinks the array in place (top_k, top_p, min_p).
        data = np.ctypeslib.as_array(array.data, shape=(array.size,))
        logits = data["logit"].astype(np.float64)
        possible = np.isfinite(logits)
        ids, logits = data["id"][possible].copy(), logits[possible]
        probs = np.exp(logits - logits.max())
        return ids, probs / probs.sum()

    def _accept(self, token: int) -> int:
        llama_cpp.llama_sampler_accept(self.chain, token)
        return token

    def close(self) -> None:
        if self.chain:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None

    def __del__(self) -> None:
        self.close()


def logits_at(ctx: Any, batch_index: int, n_vocab: int) -> np.ndarray:
    pointer = llama_cpp.llama_get_logits_ith(ctx, batch_index)
    return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,))


def argmax_rows(ctx: Any, rows: list[int], n_vocab: int) -> list[int]:
    """The argmax of the logits at each of ``rows`` (batch indices) of the last decode, in one
    call over the block of logits they lie in (the module's docstring)."""
    base = _address(llama_cpp.llama_get_logits(ctx))
    at = [(_address(llama_cpp.llama_get_logits_ith(ctx, row)) - base) // (4 * n_vocab) for row in rows]
    low, high = min(at), max(at)
    block = np.ctypeslib.as_array(ctypes.cast(base, ctypes.POINTER(ctypes.c_float)), shape=(high + 1, n_vocab))[low:]
    best = block.argmax(axis=1)
    return [int(best[row - low]) for row in at]


def logprob_entry(ctx: Any, tokenizer: Any, logits_index: int, token: int, top: int) -> dict[str, Any]:
    """OpenAI's logprobs entry of ``token`` from the logits at ``logits_index`` (read now:
    the next decode overwrites them), with the ``top`` most likely tokens."""
    logprob, best = token_logprobs(logits_at(ctx, logits_index, tokenizer.n_vocab), token, top)

    def entry(t: int, lp: float) -> dict[str, Any]:
        piece = tokenizer.piece(t)
        return {"token": piece.decode("utf-8", errors="backslashreplace"), "logprob": lp, "bytes": list(piece)}

    return {**entry(token, logprob), "top_logprobs": [entry(t, lp) for t, lp in best]}


def token_logprobs(logits: np.ndarray, token: int, top: int) -> tuple[float, list[tuple[int, float]]]:
    """The model's log-probability of ``token`` and the ``top`` most likely tokens, from the
    raw logits (before bias, penalties and temperature, as OpenAI reports them)."""
    shifted = logits.astype(np.float64) - float(logits.max())
    log_z = float(np.log(np.exp(shifted).sum()))
    chosen = float(shifted[token]) - log_z
    if top <= 0:
        return chosen, []
    best = np.argpartition(-shifted, top)[:top]
    best = best[np.argsort(-shifted[best])]
    return chosen, [(int(t), float(shifted[t]) - log_z) for t in best]


def _address(pointer: Any) -> int:
    """A logits pointer's address (never NULL after a decode that asked for them)."""
    address = ctypes.cast(pointer, ctypes.c_void_p).value
    if address is None:
        raise RuntimeError("llama.cpp returned no logits for a row the decode asked for")
    return address
