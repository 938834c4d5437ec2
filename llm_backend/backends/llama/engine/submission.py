"""Requests in: a chat or completion request validated, tokenized and queued (issue #48).

The engine's first job apart from its step (batching.py): the chat template rendered with
the tools offered, the prompt's canonical parts found (where the last message starts, what
the client declared shared: prefixes.py), its output room fitted to the window and the KV
pool (``fitted``, ``share``: what admission.py reserves for it), the samplers built before
any work starts (a bad grammar is refused at once), drafts and a thinking budget attached.
The request it makes, admission.py places on a sequence.

``Submission`` is that part of the engine (batching.py), on the engine's model, tokenizer and
template.
"""

from __future__ import annotations

from typing import Any, cast

import llama_cpp

from ....errors import max_tokens_beyond_ceiling, max_tokens_too_large
from ....settings.ceiling import max_tokens_ceiling
from .drafts import Draft, StepCosts
from .errors import ContextError, RequestError
from .llama_params import trained_window
from .media import Media, Span, image_parts
from .prefixes import common_prefix
from .prompt_tokens import PromptTokens
from .prompts import ChatTemplate, Tokenizer
from .special_texts import Defused
from .requests import Choice, Request
from .sampling import Sampler, SamplingParams
from .text import TextStream
from .thinking import Thinking


# The least output a request without max_tokens reserves in a shared pool, however long its
# prompt: a share of pool / parallel less a 2k prompt would be nothing (admission.py).
FLOOR = 256


class Submission:
    """Requests in: ``submit`` validates one and makes it a ``Request``."""

    def __init__(
        self, model: Any, tokenizer: Tokenizer, template: ChatTemplate, n_ctx: int, pool: int, parallel: int,
        config: dict[str, Any], costs: StepCosts, media: Media | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.prompt_tokens = PromptTokens(tokenizer)  # a tenant's recent prompts' tokens, reused
        self.template = template
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(model.vocab))
        self.n_ctx, self.pool, self.parallel = n_ctx, pool, parallel
        # The longest answer a request gets (settings/model.py's ``max_answer``): as set, else
        # the trained window. A GGUF has no key for a longest answer (gguf-py's Keys: a window,
        # recommended sampler settings, no output length), so a card's figure is set by hand.
        # Beyond it a model never trained on such lengths only repeats itself (issue #59: the
        # 135M model never ended Claude Code's 32,000-token turn).
        trained = trained_window(model)
        self.max_answer = int(config.get("max_answer") or trained)
        # Above this a max_tokens is refused, not fitted (settings/model.py).
        self.ceiling = max_tokens_ceiling(trained, n_ctx, self.max_answer)
        self.shared_pool = bool(config.get("kv_shared", False))
        # Drafts from the request's own prompt (drafts.py): off unless the model enables them.
        self.prompt_lookup = bool(config.get("prompt_lookup", False))
        self.costs = costs  # what decodes cost on this device, for every draft (drafts.py)
        self.media = media  # a vision model's projector (media.py), else None

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, tool_choice: Any = None,
        template_kwargs: dict[str, Any] | None = None, *, tenant: str,
    ) -> tuple[list[int], list[str], str | None, list[Span]]:
        """The prompt tokens of chat ``messages`` (the chat template rendered with the tools
        offered and its own switches, tokenized), the template's stop strings, for a
        reasoning model where its answer starts (reasoning/: inside a block the prompt
        opened, or not), and its images' spans (media.py: each image's positions in the
        prompt, placeholder ids there). ``tenant``: whose recent prompts' tokens it may reuse
        (prompt_tokens.py), whose images these are. Only the template's markup becomes
        control tokens: a client's string that holds one's text is read as text (a
        ``Defused`` prompt: special_texts.py)."""
        images: list[dict[str, Any]] = []
        if image_parts(messages):
            if self.media is None:
                raise RequestError(400, "This model takes no images (it has no projector: 'mmproj').", "messages", "invalid_value")
            messages, images, marker = self.media.placed(messages)
        text, template_stop, has_bos = self.template.render(messages, tools, tool_choice, template_kwargs)
        start = self.template.reasoning.start(text) if self.template.reasoning is not None else None
        add_bos = self.add_bos and not has_bos
        if not images:
            return self.prompt_tokens.tokens(text, add_bos, tenant), template_stop, start, []
        assert self.media is not None  # images are placed only where there is a projector
        pieces = text.split(marker)
        if len(pieces) != len(images) + 1:
            raise RequestError(400, "This model's chat template did not place every image.", "messages", "invalid_value")
        if isinstance(text, Defused):
            pieces = [Defused(piece) for piece in pieces]
        tokens = [self.prompt_tokens.tokens(pieces[0], add_bos, tenant)] + [
            self.tokenizer.specials.tokens(piece, False) if isinstance(piece, Defused) else self.tokenizer.tokenize(piece, False)
            for piece in pieces[1:]
        ]
        prompt, spans = self.media.framed(tokens, images, tenant)
        return prompt, template_stop, start, spans

    def submit(self, rid: str, op: str, params: dict[str, Any]) -> Request:
        """A chat or completion request validated (raises RequestError), ready to queue."""
        self._check_asked(params)  # before the prompt is rendered: work sized by it
        stop = list(params.get("stop") or [])
        if op == "chat":
            prompt, template_stop, reasoning_start, spans = self.chat_prompt(
                params["messages"], params.get("tools"), params.get("tool_choice"), params.get("chat_template_kwargs"),
                tenant=str(params.get("tenant") or ""),
            )
            stop += [s for s in template_stop if s not in stop]
            param = "messages"
        else:
            raw = params.get("prompt", "")
            prompt = list(raw) if isinstance(raw, list) else self.tokenizer.tokenize(raw, add_bos=self.add_bos)
            param = "prompt"
            bad = [t for t in prompt if not 0 <= t < self.tokenizer.n_vocab]
            if bad:
                raise RequestError(400, "'prompt' has token ids outside the vocabulary.", "prompt", "invalid_value")
        if not prompt:
            # Generating from nothing still needs one token to start from.
            prompt = [llama_cpp.llama_vocab_bos(self.model.vocab)]
        if len(prompt) >= self.n_ctx:
            raise ContextError(len(prompt) + 1, self.n_ctx, param)
        n = int(params.get("n") or 1)
        if n > self.parallel:
            raise RequestError(400, f"'n' can be at most {self.parallel} for this model.", "n", "invalid_value")
        sampling = SamplingParams.from_request(params, self.tokenizer.n_vocab)
        if sampling.top_logprobs > 20:
            raise RequestError(400, "'top_logprobs' can be at most 20.", "top_logprobs", "invalid_value")
        room = self.fitted(params, len(prompt), n)
        request = Request(rid, prompt, n, room, sampling, stop, tenant=str(params.get("tenant") or ""))
        if op == "chat":
            request.spans = spans
        request.share = self.share(params, len(prompt), room)
        if op == "chat":
            request.reasoning_start = reasoning_start
        if params.get("prediction") is not None:
            # Beyond the context no token of it could be used.
            request.prediction = self.tokenizer.tokenize(params["prediction"], add_bos=False, special=False)[: self.n_ctx]
        request.split = len(prompt)
        if op == "chat":
            messages = params["messages"]
            if request.spans:  # the images as text of their own: the parts end where an image starts
                messages = cast(Media, self.media).placed(messages)[0]
            tools = params.get("tools"), params.get("tool_choice"), params.get("chat_template_kwargs")  # as rendered
            if len(messages) > 1:
                request.split = self._rendered_prefix(messages[:-1], prompt, request.tenant, *tools)
            if params.get("shared_messages"):
                # Shared: the declared messages' own text, rendered without this request's
                # tools and switches. Templates write the tools into the system block (the
                # convention format, Hermes, Qwen): rendered with them, the shared part held
                # one tenant's tool descriptions, and another's cached_tokens told a right
                # guess of them from a wrong one, a token at a time (issue #56).
                request.shared = self._rendered_prefix(messages[: int(params["shared_messages"])], prompt, request.tenant)
        if params.get("echo"):
            raw = params.get("prompt")
            request.echo = raw if isinstance(raw, str) else self.tokenizer.text_of(prompt)
            if sampling.logprobs:
                # The prompt's own logprobs need logits at every prompt position: no reuse.
                first = self.tokenizer.piece(prompt[0])
                request.prompt_logprobs = [
                    {"token": first.decode("utf-8", errors="backslashreplace"), "logprob": None,
                     "bytes": list(first), "top_logprobs": None}
                ]
        # Build the samplers now so a bad grammar is refused before any work starts.
        drafts = request.prediction is not None or self.prompt_lookup
        request.choices = [
            Choice(index, -1, Sampler(sampling, self.model, self.n_ctx, index, drafts), TextStream(stop), draft=self._draft(request))
            for index in range(n)
        ]
        budget = params.get("thinking_budget")
        if op == "chat" and budget is not None and reasoning_start is not None and not drafts and not params.get("grammar"):
            for choice in request.choices:
                choice.thinking = self._thinking(reasoning_start, int(budget))
        return request

    def _check_asked(self, params: dict[str, Any]) -> None:
        """A ``max_tokens`` above the ceiling refused (OpenAI's 400, naming the field the client
        used); beyond the window too where the model says so. The API process checks the same
        before a request comes (params.py), with the ceiling it knows: before a model whose
        window is read from its GGUF has loaded once, a higher one (local_model.py)."""
        asked = params.get("max_tokens")
        param = params.get("max_tokens_param") or "max_tokens"
        error = None
        if asked is not None and asked > self.n_ctx and params.get("refuse_beyond_context"):
            error = max_tokens_too_large(param, asked, self.n_ctx)
        elif asked is not None and asked > self.ceiling:
            error = max_tokens_beyond_ceiling(param, asked, self.ceiling)
        if error is not None:
            raise RequestError(error.status, error.message, error.param, error.code)

    def fitted(self, params: dict[str, Any], prompt: int, n: int) -> int:
        """A request's ``max_tokens`` fitted to the model's longest answer and to the room its
        prompt leaves in its window and, beside its other choices, in the pool: what it
        reserves (admission.py). A request without one gets the same: an answer has an end."""
        asked = params.get("max_tokens")
        room = min(self.n_ctx - prompt, (self.pool - prompt) // n)
        if room < 1:
            raise RequestError(400, f"'n' can be at most {max(1, self.pool - prompt)} for a prompt this long.", "n", "invalid_value")
        room = min(room, self.max_answer)
        return room if asked is None else min(asked, room)

    def share(self, params: dict[str, Any], prompt: int, room: int) -> int | None:
        """What each choice of a request without ``max_tokens`` reserves of its ``room``
        in a shared pool (admission.py); None: it reserves its ``max_tokens``."""
        if params.get("max_tokens") is not None or not self.shared_pool:
            return None  # split: each sequence has its window of cells, the rest of it reserved
        return min(room, max(self.pool // self.parallel - prompt, FLOOR))

    def _thinking(self, start: str, budget: int) -> Thinking:
        family = self.template.reasoning
        assert family is not None  # a thinking budget is asked only of a reasoning template
        close = self.tokenizer.tokenize(family.budget_close, add_bos=False)
        return Thinking(family.budget_opening, family.budget_closing, close, start == "open", budget)

    def _draft(self, request: Request) -> Draft | None:
        if request.prediction is not None:
            return Draft(request.prediction, counted=True, costs=self.costs)
        if self.prompt_lookup and not request.spans:  # an image's placeholders are no tokens to draft
            return Draft(request.prompt, counted=False, aligned=False, costs=self.costs)
        return None

    def _rendered_prefix(self, messages: list[dict[str, Any]], prompt: list[int], tenant: str, *tools: Any) -> int:
        """How many leading tokens of ``prompt`` are the rendering of ``messages`` (its first
        ones): what the prompt and that rendering have in common. None when the template
        cannot render them alone (Llama 3 wants a user message to put the tools in)."""
        try:
            text, _, has_bos = self.template.render(messages, *tools)
        except RequestError:
            return 0
        head = self.prompt_tokens.tokens(text, self.add_bos and not has_bos, tenant)
        return common_prefix(head, prompt, len(prompt))
