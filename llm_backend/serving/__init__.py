"""API semantics that span backends: what is stored and how (stored chat completions;
Responses, Conversations and Files next), list shapes and their limits."""
