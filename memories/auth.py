"""`Authorization: Token <key>` authentication against hashed API keys, and the two permission levels."""

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token header.") from exc
        key = ApiKey.objects.active().filter(key_hash=ApiKey.hash_key(raw)).first()
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return (key, key)

    def authenticate_header(self, request):
        return self.keyword


class HasApiKey(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, ApiKey)


class IsStaffKey(permissions.BasePermission):
    message = "This endpoint needs a privacy-team (staff) API key."

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiKey) and request.auth.is_staff
