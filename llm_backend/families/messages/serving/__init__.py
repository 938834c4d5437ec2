"""The Messages family's serving (rank 2): Anthropic's Messages API over the service's chat
pipeline (docs/MESSAGES.md).

- ``request.py``: a Messages request as the service's chat request, and what is refused;
  ``bounds.py``: its lists and stop sequences within the lane's own limits before
  translation (requests and batch lines);
- ``service.py``: create and count_tokens: the chat request asked of the model's backend,
  thinking on models without reasoning; an Anthropic upstream's model passed through;
- ``answer.py``: a chat answer as a Message or its event stream, with its usage;
- ``passthrough.py``: an Anthropic upstream's answer relayed and metered from its usage
  events;
- ``signatures.py``: thinking signatures bound to the project: a block sent back that does
  not verify is Anthropic's 400;
- ``batches.py``: Message Batches on the batch runner, their results in Anthropic's shape.
"""
