"""Each model family's own tool calling, one module per family behind one interface
(``base.ToolFormat``): recognised from the GGUF's chat template, rendered with the template
(tools, and calls and tool results in the history), forced by a grammar in its syntax, and
read back, streamed, into OpenAI ``tool_calls``. A template of no known family, or one that
does not render the tools it is given, gets the convention (convention.py).

The engine worker picks the format (engine/prompts.py) and names it in its hello; the API
process reads answers with the format of that name (shapers.py).
"""

from __future__ import annotations

from collections.abc import Callable

from .base import ToolFormat
from .convention import Convention
from .deepseek_v3_1 import DeepSeekV31
from .functionary import Functionary
from .glm import Glm
from .gpt_oss import GptOss
from .hermes import Hermes
from .llama3 import Llama3
from .mistral import Mistral, MistralArgs
from .qwen3_coder import Qwen3Coder

# In the order they are recognised: the first whose template test passes (gpt-oss's and
# Functionary's templates also hold Llama's header tokens, so they come before it; Qwen3-Coder's
# and GLM's hold Hermes's <tool_call>, so they come before Hermes).
FAMILIES: tuple[type[ToolFormat], ...] = (
    GptOss, MistralArgs, Mistral, Functionary, Qwen3Coder, Glm, DeepSeekV31, Hermes, Llama3
)
_ALL: tuple[type[ToolFormat], ...] = (*FAMILIES, Convention)
FORMATS: dict[str, type[ToolFormat]] = {format.name: format for format in _ALL}


def named(name: str | None) -> ToolFormat:
    """The format of that name (the convention for an unknown one, or none)."""
    return FORMATS.get(name or "", Convention)()


def for_template(template: str | None, renders_tools: Callable[[], bool]) -> ToolFormat:
    """The family of ``template``, if it renders the tools it is given (``renders_tools``)
    or writes them itself, else the convention."""
    family = next((format for format in FAMILIES if template and format.detect(template)), None)
    return family() if family is not None and (family.writes_tools or renders_tools()) else Convention()


__all__ = ["FORMATS", "ToolFormat", "for_template", "named"]
