"""Plain greedy rows read in one argmax (issue #57: the sampling between two decodes): the
tokens llama.cpp's greedy sampler picks, on the real default GGUF's logits."""

from __future__ import annotations

import llama_cpp
import pytest
from llama_cpp import _internals, _logger

from llm_backend.backends.llama.engine.llama_params import model_params
from llm_backend.backends.llama.engine.sampling import Sampler, SamplingParams, argmax_rows
from tests.support.models import default_gguf, llama_in_process


@pytest.fixture(autouse=True)
def quiet():
    _logger.set_verbose(False)


def test_one_argmax_over_a_decodes_rows_picks_what_llama_cpps_greedy_sampler_picks():
    with llama_in_process(2048, 8) as (model, context, batch, greedy):
        # A step's shape: a token of each of 8 sequences, one with 3 drafted rows beside it.
        rows = [(100 + seq, 0, seq) for seq in range(8)] + [(200 + i, 1 + i, 3) for i in range(3)]
        batch.n_tokens = len(rows)
        for i, (token, pos, seq) in enumerate(rows):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, True
            batch.seq_id[i][0] = seq
        assert llama_cpp.llama_decode(context.ctx, batch) == 0
        n_vocab = llama_cpp.llama_vocab_n_tokens(model.vocab)
        for picked in ([0, 1, 2, 3, 4, 5, 6, 7], [7, 2, 9, 0], [10, 10, 4]):
            sampled = [llama_cpp.llama_sampler_sample(greedy, context.ctx, row) for row in picked]
            assert argmax_rows(context.ctx, picked, n_vocab) == sampled


def test_only_a_greedy_chain_with_nothing_before_its_argmax_is_read_so():
    model = _internals.LlamaModel(path_model=str(default_gguf()), params=model_params({}), verbose=False)
    kinds = {
        "greedy": SamplingParams(temperature=0), "sampled": SamplingParams(temperature=0.7),
        "biased": SamplingParams(temperature=0, logit_bias={5: 2.0}), "penalized": SamplingParams(temperature=0, presence_penalty=0.5),
        "grammar": SamplingParams(temperature=0, grammar='root ::= "yes"'), "repeat": SamplingParams(temperature=0, repeat_penalty=1.1),
    }
    argmax = {name: Sampler(params, model, 512, 0).argmax for name, params in kinds.items()}
    assert argmax == {"greedy": True, "sampled": False, "biased": False, "penalized": False, "grammar": False, "repeat": False}
