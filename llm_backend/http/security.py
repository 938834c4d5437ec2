"""Connexion's bearer security, answered by our ``Authenticator``; the caller it finds
becomes the request context's principal. A scheme marked ``x-admin`` (extensions.yaml's,
and the OpenAI document's ``AdminApiKeyAuth``: ``spec/adapter.py`` marks it) needs an
admin key: any other key gets 403."""

from __future__ import annotations

from connexion.security import BearerSecurityHandler

from ..auth import Authenticator
from . import context


def security_handler(authenticator: Authenticator) -> type[BearerSecurityHandler]:
    """A Connexion bearer handler that asks ``authenticator`` (Connexion's default one needs
    a function name in the spec, and rejects the bare ``Bearer`` some clients send)."""

    class KeyringBearerHandler(BearerSecurityHandler):
        def _resolve_func(self, security_scheme):
            return authenticator.authenticate_admin if security_scheme.get("x-admin") else authenticator.authenticate

        def _get_verify_func(self, authenticate):
            admin_operation = authenticate == authenticator.authenticate_admin

            async def verify(request):
                principal = await authenticate(request.headers.get("Authorization"))
                context.authenticated(principal)
                context.record().admin_operation = admin_operation
                return principal.token_info()

            return verify

    return KeyringBearerHandler
