"""llm-backend: an OpenAI-compatible API service driven by the official OpenAI OpenAPI document."""

import os

# numpy's OpenBLAS on one thread (an operator's own value wins), set before numpy loads: its
# matrices here are small (the moderation classifier's fit, audio resampling), and its
# threads spinning for them held both cores of the 2-core machine (the classifier's first
# fit: 6-8 s, a sleeping thread woken 0.17-0.19 s late, the event loop's too; on one
# thread: 0.8-0.9 s, 0.002-0.009 s late).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
