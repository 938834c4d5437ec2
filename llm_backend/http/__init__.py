"""The HTTP layer: ASGI middleware, the request context, rendering answers and errors,
the fast lane and forwarding to upstream APIs. Below it nothing knows about HTTP."""
