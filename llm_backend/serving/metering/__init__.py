"""Money, as it happens (rank 2): every answer priced into its project's and the
organisation's month, and hard spend limits held before a request is served. Core, not the
control plane's: every operation's answer is metered, whatever family serves it; the Admin
API only sets the limits and alerts (``serving/admin/spend.py``) and reads the costs
(``serving/admin/costs.py``).

- ``prices.py``: the price table (``prices:`` in the settings): usage into money, one line
  item at a time, as OpenAI's costs name them;
- ``holds.py``: the most a request can cost, read from its body before it is served;
- ``meter.py``: ``SpendMeter``, each answer priced into the month's spend, exactly; a request
  under a hard limit holds its most before it is served and settles when it ends,
  ``insufficient_quota`` past it; alerts fired once (the audit log, a signed webhook).
"""
