"""The local backend: GGUF models on llama-cpp-python, each in supervised worker processes.

Only ``worker`` imports llama_cpp, and it runs in its own process: the API process never
loads the engine, so an engine crash cannot take it down.
"""
