"""Local audio models (rank 1): speech to text (faster-whisper) and text to speech (hibari, or
Piper as an extra), each model in a supervised worker process (docs/AUDIO.md). The
operations' rules and answers are ``serving/audio.py``'s, their controller
``controllers/audio.py``.

- ``backend.py``: the models, started on first use; ``parallel`` requests at once and a
  bounded line behind them serving tenants in turn (``backends/fair_line.py``: 429 past it or
  after ``queue_timeout``); threads from the chat engines' core budget, every core for a
  transcription that runs alone (Whisper base: 3.9 s for a 4.8 s question on one core,
  2.2 s on two).
- ``worker.py``: the audio engine process, requests in threads, driven over JSON lines by the
  chat engines' ``WorkerProcess`` (``backends/llama/worker_process.py``).
- ``transcriber.py``: speech to text in a worker (CTranslate2, int8 on CPU): windows,
  segments, words; ``whisper.py``: its model, a window's language detected from the encoder
  pass its transcription makes anyway.
- ``speaker.py``: text to speech, the engine-neutral part and hibari's engine;
  ``piper_speaker.py``: Piper's (``piper-tts``, GPL-3.0-or-later: the optional extra);
  ``encoder.py``: samples to an audio file's bytes with PyAV, as they are produced.
- ``sources.py``: the models' files from PyPI packages (Whisper joined from its parts and
  checked against its digest; the Piper voice found in its package), nothing from a hub.
"""
