"""drf-spectacular post-processing: every operation documents the error shape
for the statuses any view can answer with (authentication, throttling, and
for writes bad input and conflicts), so the schema tells clients the truth."""

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ALWAYS = {
    "401": "Not authenticated: not_authenticated, authentication_failed, or token_expired (log in again).",
    "403": "Not allowed.",
    "414": "The query string is longer than the server takes (query_too_long; details.max_length).",
    "429": "Too many requests; see details.wait_seconds.",
}
WRITES = {
    "400": "Invalid request.",
    "409": "Conflict with the current state or an earlier request.",
    "503": "Payments and transfers are paused by the bank (payments_paused); retry later with the same key.",
}


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", _error_schema())
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            wanted = dict(ALWAYS)
            if method in {"post", "put", "patch", "delete"}:
                wanted.update(WRITES)
            if "{" in path:
                wanted["404"] = "No such object (or not yours)."
            responses = operation.setdefault("responses", {})
            for status, description in wanted.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
                )
    return result


def _error_schema():
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object", "additionalProperties": {}},
                },
            }
        },
    }
