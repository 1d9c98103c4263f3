"""The service's published certificate signing keys, for anyone to verify certificates offline (no auth):
`/.well-known/erasure-signing-key` (JSON: every key by id, the current one marked) and `….pem` (the same keys as
one PEM bundle, what `manage.py verify_certificate --public-key` takes)."""

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from ..certificate import SIGNING_NOT_CONFIGURED
from ..signing import ALGORITHM, published_keys


@require_GET
def signing_keys(request: HttpRequest) -> HttpResponse:
    try:
        keys = published_keys()
    except ImproperlyConfigured:
        return JsonResponse({"error": SIGNING_NOT_CONFIGURED}, status=503)
    response = JsonResponse({"algorithm": ALGORITHM, "current_key_id": keys[0]["key_id"], "keys": keys})
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def signing_keys_pem(request: HttpRequest) -> HttpResponse:
    try:
        keys = published_keys()
    except ImproperlyConfigured:
        return HttpResponse(SIGNING_NOT_CONFIGURED, status=503, content_type="text/plain")
    response = HttpResponse("".join(k["public_key"] for k in keys), content_type="application/x-pem-file")
    response["Cache-Control"] = "public, max-age=300"
    return response
