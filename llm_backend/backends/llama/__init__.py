"""The local backend: GGUF models on llama-cpp-python, each in supervised worker processes.

Only ``worker`` and ``engine/`` import llama_cpp, and they run in their own process: the API process never
loads the engine, so an engine crash cannot take it down.
"""
