"""Everything about the OpenAPI documents: loading them fast, and adapting them for Connexion."""
