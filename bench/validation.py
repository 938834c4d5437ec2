"""Cost of validating a chat request body against the OpenAI document, per request.

Times what the service does for every POST /v1/chat/completions before the controller runs:
a new body validator (as Connexion makes one per request), JSON parsing plus JSON-Schema (2020-12, nullable-aware) validation of the body against the
spec's CreateChatCompletionRequest, with refs resolved as Connexion resolves them.

    .venv/bin/python bench/validation.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connexion.spec import Specification  # noqa: E402

from llm_backend.spec import adapter, validation  # noqa: E402
from llm_backend.spec.loader import load_document  # noqa: E402

BODY = {
    "model": "smollm2",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France? Answer in one word."},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": [{"type": "text", "text": "And of Italy?"}]},
    ],
    "temperature": 0.7,
    "max_tokens": 64,
    "stream": True,
    "stream_options": {"include_usage": True},
    "stop": ["\n\n"],
    "seed": 42,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    document = load_document(ROOT / "openapi" / "openai.yaml", ROOT / "data" / "cache")
    spec = Specification.from_dict(adapter.prepare(document))
    schema = spec["paths"]["/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    raw = json.dumps(BODY).encode()

    def served(body):
        # As Connexion does it: a new validator object for every request.
        validation.OpenAPI31BodyValidator(schema=schema, encoding="utf-8", strict_validation=False)._validate(body)
        return True

    started = time.perf_counter()
    validation.OpenAPI31BodyValidator(schema=schema, encoding="utf-8", strict_validation=False)._validate(BODY)
    print(f"{'first request (compiles)':32} {(time.perf_counter() - started) * 1e3:7.1f} ms")
    for name, check in (
        ("served path (jsonschema-rs)", served),
        ("python jsonschema (error path)", validation.RequestSchemaValidator(schema).is_valid),
    ):
        samples = []
        for _ in range(args.runs):
            started = time.perf_counter()
            assert check(json.loads(raw))
            samples.append((time.perf_counter() - started) * 1e6)
        samples.sort()
        print(
            f"{name:32} median {statistics.median(samples):7.0f} us, p90 {samples[int(len(samples) * 0.9)]:7.0f} us, "
            f"p99 {samples[int(len(samples) * 0.99)]:7.0f} us ({args.runs} runs, body {len(raw)} bytes)"
        )

if __name__ == "__main__":
    main()
