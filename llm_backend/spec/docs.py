"""The documents the interactive API docs (``/docs``, http/pages.py) show.

The vendored OpenAI document is about 3 MB of JSON: Swagger UI needs many seconds to
render it, and most of it describes operations this service only forwards. The docs show
the served operations instead - those with a controller here, in full with the schemas
they refer to - and name the others in the description. Swagger UI 4 (the assets of
Connexion's ``swagger-ui`` extra) renders OpenAPI 3.0 only: the view is labelled 3.0.3,
which its 3.1 schemas render well enough under (a ``type`` list shows as its first type).
"""

from __future__ import annotations

import json

from .adapter import HTTP_METHODS, _referenced_components, is_served, operations

DOCS_OPENAPI_VERSION = "3.0.3"


def served_view(document: dict, base_path: str) -> dict:
    """``document`` reduced to the operations served here, with servers at ``base_path``."""
    paths: dict[str, dict] = {}
    served, forwarded = [], []
    for path, method, operation in operations(document):
        if is_served(operation):
            item = paths.setdefault(path, {})
            item[method] = operation
            served.append(operation["operationId"])
            if "parameters" in document["paths"][path]:
                item["parameters"] = document["paths"][path]["parameters"]
        else:
            forwarded.append(operation["operationId"])
    used_tags = {tag for item in paths.values() for method in HTTP_METHODS for tag in item.get(method, {}).get("tags", [])}
    info = dict(document.get("info", {}))
    info["title"] = f"{info.get('title', 'OpenAI API')}, as served by llm-backend"
    info["description"] = (
        f"The {len(served)} operations of the OpenAI API that this service serves itself. "
        f"The other {len(forwarded)} operations of the OpenAI document are forwarded verbatim to the "
        "default upstream API when one is configured, and answer 404 otherwise."
    )
    return {
        "openapi": DOCS_OPENAPI_VERSION,
        "info": info,
        "servers": [{"url": base_path}],
        "security": document.get("security", []),
        "tags": [tag for tag in document.get("tags", []) if tag.get("name") in used_tags],
        "paths": paths,
        "components": _referenced_components(document.get("components", {}), paths),
    }


def as_json(document: dict) -> bytes:
    # YAML gives dates for some examples; JSON has none.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()
