"""llm-backend: an OpenAI-compatible API service driven by the official OpenAI OpenAPI document."""

__version__ = "0.1.0"
