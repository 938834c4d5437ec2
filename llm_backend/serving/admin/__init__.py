"""The control plane (docs/ADMIN.md): OpenAI's Admin API served here, over the storage of the
same names. Every change is logged in the audit log, in its own transaction (``audit.py``).

- ``projects.py`` (projects, their service accounts and keys), ``admin_keys.py``,
  ``rate_limits.py`` (a project's per-model limits, enforced by ``http/project_limits.py``),
  ``hosted_tools.py`` (which hosted tools a project may use), ``retention.py`` (a project's
  data retention, swept through each family's store), ``people.py`` (users, invites, roles,
  groups, certificates: none here, an honest 404), ``objects.py``, ``errors.py``;
- ``audit.py``: entries made in each change's transaction, their list, refused admin logins;
- money as the Admin API sets and reads it: ``spend.py`` (hard limits and alerts as set),
  ``costs.py`` (``/v1/organization/costs``), ``sampler.py`` (vector stores' bytes, hourly).
  Metering itself is the core's (``serving/metering/``: prices, holds, the meter): every
  answer is priced whatever family serves it.
"""
