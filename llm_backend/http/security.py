"""Connexion's bearer security, answered by our ``Authenticator``; the caller it finds
becomes the request context's principal. A scheme marked ``x-admin`` (extensions.yaml's,
and the OpenAI document's ``AdminApiKeyAuth``: ``spec/adapter.py`` marks it) needs an
admin key: any other key gets 403. Anthropic's document (``openapi/anthropic.yaml``) takes the
same keys in ``x-api-key`` too (``api_key_handler``)."""

from __future__ import annotations

from connexion.security import NO_VALUE, ApiKeySecurityHandler, BearerSecurityHandler

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


def api_key_handler(authenticator: Authenticator) -> type[ApiKeySecurityHandler]:
    """Connexion's apiKey handler for a key sent in a header (Anthropic's ``x-api-key``),
    asked of ``authenticator`` as the same key sent as a Bearer token: the same keys, the
    same projects and limits."""

    class KeyringApiKeyHandler(ApiKeySecurityHandler):
        def _resolve_func(self, security_scheme):
            return authenticator.authenticate

        def _get_verify_func(self, authenticate, loc, name, required_scopes):
            async def verify(request):
                key = request.headers.get(name) if loc == "header" else None
                if key is None:
                    return NO_VALUE  # the other scheme (Bearer) may carry it
                principal = await authenticate(f"Bearer {key}")
                context.authenticated(principal)
                return principal.token_info()

            return verify

    return KeyringApiKeyHandler
