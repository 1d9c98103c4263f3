"""OpenAPI postprocessing: the answers every operation can give besides its own, so the schema matches what the
service really sends (schemathesis checks responses against it).

* 401 on every operation that needs a key (no key or an unknown one), 403 on the Erasure API (a non-staff key);
* 400 and 413 on every operation with a body (malformed JSON, nesting, surrogates; a body over
  DATA_UPLOAD_MAX_MEMORY_SIZE), 400 on every operation with query parameters, 404 on every one with path
  parameters or a pagination cursor;
* 503 everywhere: a statement past WEB_STATEMENT_TIMEOUT_MS (config/middleware.py);
* 414 everywhere: a request line longer than the front server accepts (gunicorn's limit_request_line);
* the audit export's CSV form.
"""

from typing import Any

ERROR_COMPONENT = "ErrorAnswer"
EXTRA = {
    "400": "Bad request: the body names the field or the problem",
    "401": "No API key, or an unknown or revoked one",
    "403": "The key may not use this operation (the Erasure API needs a privacy-team key)",
    "404": "Not found",
    "413": "Request body too large",
    "414": "Request line too long (refused by the front server)",
    "503": "The request exceeded the database time limit and was cancelled; retry later or narrow it",
}


def _answer(code: str) -> dict[str, Any]:
    return {
        "description": EXTRA[code],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }


def add_common_answers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = {
        "type": "object",
        "description": "Mem0's {error} on /v1–/v3, DRF's {detail} on /api; either names the problem",
        "properties": {"error": {"type": "string"}, "detail": {}},
    }
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            params = operation.get("parameters", [])
            codes = ["503", "414"]
            if operation.get("security") and {} not in operation["security"]:
                codes.append("401")
                if path.startswith("/api/"):
                    codes.append("403")
            if "requestBody" in operation:
                codes += ["400", "413"]
            if any(p.get("in") == "query" for p in params):
                codes.append("400")
            if any(p.get("in") == "path" for p in params) or any(p.get("name") == "cursor" for p in params):
                codes.append(
                    "404"
                )  # an unknown id, or a cursor that does not decode (DRF's "Invalid cursor")
            for code in codes:
                operation["responses"].setdefault(code, _answer(code))
            if path == "/api/v1/audit/export/" and method == "get":
                ok = operation["responses"].get("200", {})
                ok.setdefault("content", {}).setdefault(
                    "text/csv", {"schema": {"type": "string", "description": "CSV with a `record` column"}}
                )
    return result
