"""The Responses and Conversations APIs, served for local models over ``chat_completion``.

``items`` (input items ⇄ chat messages), ``request`` (what is honoured, accepted,
refused), ``objects`` (the Response object), ``events`` (the streaming protocol),
``service`` (one turn: history, backend, storing), ``background`` (tasks, cancel, the
start-up sweep), ``lists`` (OpenAI's list shapes). See docs/RESPONSES.md.
"""
