"""Backends answer OpenAI requests for the models they own; controllers pick one by model id."""
