"""OpenAI's Realtime API served here (issue #35): sessions over ``/v1/realtime``
(``http/realtime_socket.py``); see docs/REALTIME.md."""
