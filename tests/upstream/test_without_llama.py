"""A gateway install without the `llama` extra: with local models off, llama-cpp-python and
numpy are never imported, and the service still serves through its upstream."""

from __future__ import annotations

import subprocess
import sys

from tests.upstream.conftest import SERVICE_KEY, sdk

# Makes the engine's packages unimportable in every Python process started with it on PYTHONPATH.
BLOCKER = '''
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("llama_cpp", "numpy"):
            raise ImportError(f"{name} is not installed (gateway install)")
        return None

sys.meta_path.insert(0, _NotInstalled())
'''


def blocked_env(tmp_path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    return {"PYTHONPATH": str(tmp_path)}


def test_the_blocker_makes_llama_cpp_unimportable(tmp_path):
    env = {**blocked_env(tmp_path)}
    result = subprocess.run([sys.executable, "-c", "import llama_cpp"], env=env, capture_output=True)
    assert result.returncode != 0 and b"gateway install" in result.stderr


def test_gateway_serves_without_llama_cpp(server, start_server, tmp_path):
    env = {
        **blocked_env(tmp_path),
        "LLM_BACKEND_LOCAL_MODELS": "false",
        "OPENAI_BASE_URL": server.api,
        "OPENAI_API_KEY": SERVICE_KEY,
    }
    gateway = start_server(env=env)
    completion = sdk(gateway).chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert completion.model == "smollm2"
    assert "not installed" not in gateway.log()
