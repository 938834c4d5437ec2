"""Controllers, one module per tag of the OpenAPI documents, one function per operationId
(snake_case): the tag ``Chat`` and ``createChatCompletion`` live at
``controllers/chat.py::create_chat_completion``. An operation with no function here answers
404 as an unknown URL (see ``spec/adapter.py``). Controllers stay thin: pick the backend, call it, respond.
"""
