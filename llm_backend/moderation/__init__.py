"""Moderation served here: OpenAI's categories judged by a classifier on the retrieval
model's sentence embeddings (docs/MODERATION.md)."""
