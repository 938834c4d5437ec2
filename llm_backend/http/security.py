"""Connexion's bearer security, answered by our ``Authenticator``; the caller it finds
becomes the request context's principal."""

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
            async def verify(request):
                principal = await authenticate(request.headers.get("Authorization"))
                context.authenticated(principal)
                return principal.token_info()

            return verify

    return KeyringBearerHandler
