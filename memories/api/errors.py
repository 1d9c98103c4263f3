"""DRF exception handler: Mem0-style `{"error": …}` bodies for the memory API; DRF's shape elsewhere."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    path = getattr(request, "path", "") or ""
    if (
        path.startswith(("/v1/", "/v2/", "/v3/"))
        and isinstance(response.data, dict)
        and "detail" in response.data
    ):
        response.data = {"error": str(response.data["detail"]), "detail": response.data["detail"]}
    return response
