"""The control plane (docs/ADMIN.md): OpenAI's Admin API served here - projects, their
service accounts and keys, admin keys, per-model project rate limits, spend limits and
alerts, costs, the audit log, data retention and hosted tool permissions - over the
storage of the same names. Every change is logged in the audit log, in its own
transaction (``audit.py``)."""
