"""API semantics that span backends: what the OpenAI API promises beyond one engine call."""
