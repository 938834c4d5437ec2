"""Requests in: a chat or completion request validated, tokenized and queued (issue #48).

The engine's first job apart from its step (batching.py): the chat template rendered with
the tools offered, the prompt's canonical parts found (where the last message starts, what
the client declared shared: prefixes.py), the samplers built before any work starts (a bad
grammar is refused at once), drafts and a thinking budget attached. What it queues,
admission.py places on a sequence.

``Submission`` is that part of the ``Engine``, on the engine's model, tokenizer and template.
"""

from __future__ import annotations

from typing import Any

import llama_cpp

from .admission import Admission
from .drafts import Draft
from .errors import ContextError, RequestError
from .prefixes import common_prefix
from .prompt_tokens import PromptTokens
from .prompts import ChatTemplate, Tokenizer
from .requests import Choice, Request
from .sampling import Sampler, SamplingParams
from .text import TextStream
from .thinking import Thinking


class Submission(Admission):
    """Requests in: ``submit`` validates one and queues it for admission."""

    model: Any
    tokenizer: Tokenizer
    prompt_tokens: PromptTokens
    template: ChatTemplate
    add_bos: bool
    prompt_lookup: bool

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, tool_choice: Any = None,
        template_kwargs: dict[str, Any] | None = None, *, tenant: str,
    ) -> tuple[list[int], list[str], str | None]:
        """The prompt tokens of chat ``messages`` (the chat template rendered with the tools
        offered and its own switches, tokenized), the template's stop strings, and for a
        reasoning model where its answer starts (reasoning/: inside a block the prompt
        opened, or not). ``tenant``: whose recent prompts' tokens it may reuse (prompt_tokens.py).
        Only the template's markup becomes control tokens: a client's string that holds one's
        text is read as text (a ``Defused`` prompt: special_texts.py)."""
        text, template_stop, has_bos = self.template.render(messages, tools, tool_choice, template_kwargs)
        start = self.template.reasoning.start(text) if self.template.reasoning is not None else None
        return self.prompt_tokens.tokens(text, self.add_bos and not has_bos, tenant), template_stop, start

    def submit(self, rid: str, op: str, params: dict[str, Any]) -> None:
        """Validate and queue a chat or completion request (raises RequestError)."""
        stop = list(params.get("stop") or [])
        if op == "chat":
            prompt, template_stop, reasoning_start = self.chat_prompt(
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
        room = self._fitted(params, len(prompt), n)
        request = Request(rid, prompt, n, room, sampling, stop, tenant=str(params.get("tenant") or ""))
        request.share = self._share(params, len(prompt), room)
        if op == "chat":
            request.reasoning_start = reasoning_start
        if params.get("prediction") is not None:
            # Beyond the context no token of it could be used.
            request.prediction = self.tokenizer.tokenize(params["prediction"], add_bos=False, special=False)[: self.n_ctx]
        request.split = len(prompt)
        if op == "chat":
            messages = params["messages"]
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
        self.waiting.append(request)
        self._admit()

    def _thinking(self, start: str, budget: int) -> Thinking:
        family = self.template.reasoning
        close = self.tokenizer.tokenize(family.budget_close, add_bos=False)
        return Thinking(family.budget_opening, family.budget_closing, close, start == "open", budget)

    def _draft(self, request: Request) -> Draft | None:
        if request.prediction is not None:
            return Draft(request.prediction, counted=True)
        if self.prompt_lookup:
            return Draft(request.prompt, counted=False, aligned=False)
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
