"""The Batch API served here, over the Files store (docs/BATCHES.md tells the whole story):

- ``service.py``: the operations' rules (create, retrieve, cancel, list; each batch its
  creator's);
- ``input.py``: the input file checked as OpenAI checks it, while the batch is ``validating``;
- ``runner.py``: each process's runner: batches taken by lease, their lines run in turn,
  cancel and expiry, a batch resumed wherever its process died;
- ``retries.py``: when a refused line is tried again (429 and 5xx, after a doubling delay or
  the answer's retry-after);
- ``output.py``: output lines and the output and error files, in OpenAI's shapes; a refused
  batch's lines not answered, answered with the refusal.

What the runner asks of a line is the core's, for every kind of batch
(``serving/batch_lines.py``: ``Lines``, answered by ``http/batch_lines.py``, ``Refused``, and
how a refused batch ends).

Anthropic's Message Batches run on the same runner (``families/messages/serving/batches.py``).
"""
