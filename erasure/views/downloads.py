"""The HTTP response of a Download (erasure/downloads.py), for the console's pages and the Erasure API alike."""

from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse

from ..downloads import Download


def download_response(download: Download) -> HttpResponseBase:
    response: HttpResponseBase
    if isinstance(download.content, bytes):
        response = HttpResponse(download.content, content_type=download.content_type)
    else:
        response = StreamingHttpResponse(download.content, content_type=download.content_type)
    disposition = "inline" if download.inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{download.filename}"'
    return response
