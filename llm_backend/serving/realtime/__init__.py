"""OpenAI's Realtime API served here (issue #35): sessions over ``/v1/realtime``
(``http/realtime_socket.py``), a cascade of the local parts (docs/REALTIME.md).

- ``sessions.py``: a session of the kind asked for (``?model=``, ``?intent=transcription``, or
  a client secret's), its models loaded before it starts; ``conversation.py`` and
  ``transcription.py``: the two kinds.
- ``input_audio.py``: a session's input audio: its format, turn detection, buffer, commits and
  bounds; ``audio_in.py``: pcm16 and G.711 to 16 kHz samples, a turn as a WAV file;
  ``vad.py``: ``server_vad`` by Silero (1.2 MB, one thread), streamed.
- ``transcriber.py``: a turn to its transcript events (``Hearing``: turns in order, the held
  language, the pending bound, each a request through the ``Gate``).
- ``conversation_items.py``: a conversation's items, bounded in count and bytes;
  ``response.py``: one answer (text, speech, function and MCP calls); ``speaker.py``: an
  answer spoken sentence by sentence while the model writes the next; ``mcp_tools.py``: a
  session's ``mcp`` tools, with the Responses API's pieces.
- ``events.py``: ids, the ``error`` event, a configuration's refusals, held bytes, and the
  ``Gate`` every request of a session passes (a revoked key ends the session; its project's
  per-model limits and hosted tools); ``threads.py``: the threads audio and large events are
  worked in (8 MB frames of silence cost 0.7 s each on the loop).
"""
