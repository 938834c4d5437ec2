"""JSON as every lane reads it (rank -1): HTTP bodies, WebSocket events, batch lines and their
answers, the forwarded bodies' guard.

- ``scan.py``: the one bounded scanner every lane's JSON goes through before any parser keeps
  state: how deep it nests (64 levels, ``MAX_JSON_DEPTH``) and how many values and keys it
  holds, counted over its bytes in slices, O(its bytes) time and O(1) memory; a stream chunk
  by chunk (``Scanner``: the forwarded bodies' guard).
- ``text.py``: ``loads`` within a request's budgets: past its depth or ``max_body_values``
  refused by the scanner before anything is built, a large text of many values parsed in
  slices off the event loop (cut where the scan found no string open); an object's key at
  most once (400 ``duplicate_key`` naming its path: ``KeyPaths``, which the streaming guard
  reads with too).
- ``feeding.py``: an ijson event parser fed so that a long token costs its bytes once (a piece
  that gave no event makes the next one twice as long), where ijson lexes it again with each
  piece: the streamed guard's, the claims read as parsed, a repeated key's path.
- ``tail.py``: a member found from the end of a long text without reading it into objects
  (an answer's ``usage`` or ``model`` written after its one long value); ``Kept``, an answer
  kept as it passes to read one at its end.
- ``types.py``: ``Json = dict[str, Any]``, the one name for a JSON object as Python holds it.
"""
