"""The control plane (docs/ADMIN.md): OpenAI's Admin API served here, over the storage of the
same names. Every change is logged in the audit log, in its own transaction (``audit.py``).

- ``projects.py`` (projects, their service accounts and keys), ``admin_keys.py``,
  ``rate_limits.py`` (a project's per-model limits, enforced by ``http/project_limits.py``),
  ``hosted_tools.py`` (which hosted tools a project may use), ``retention.py`` (a project's
  data retention, swept through each family's store), ``people.py`` (users, invites, roles,
  groups, certificates: none here, an honest 404), ``objects.py``, ``errors.py``;
- ``audit.py``: entries made in each change's transaction, their list, refused admin logins;
- money: ``prices.py`` (the price table), ``holds.py`` (the most a body can cost),
  ``meter.py`` (each answer priced into the month's spend, exactly; a request under a hard
  limit holds its most before it is served and settles when it ends, ``insufficient_quota``
  past it; alerts fired once: the audit log, a signed webhook), ``spend.py`` (hard limits and
  alerts as set), ``costs.py`` (``/v1/organization/costs``), ``sampler.py`` (vector stores'
  bytes, hourly).
"""
