"""Access to the privacy team's console: the sign-in form (staff accounts only) and the decorator every
console view wears.

Brute force: django-axes (settings AXES_*) locks sign-in per account and per address after repeated failures, on
this form and on /admin/. Every failure reads the same (a non-staff account with the right password included, and
it counts as a failure), so the form tells nobody which accounts exist or which passwords are right."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import user_login_failed
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase


class StaffAuthenticationForm(AuthenticationForm):
    def confirm_login_allowed(self, user: Any) -> None:
        if not (user.is_active and user.is_staff):
            user_login_failed.send(
                sender=__name__,
                credentials={"username": self.cleaned_data.get("username")},
                request=self.request,
            )
            raise self.get_invalid_login_error()


class StaffLoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = StaffAuthenticationForm
    redirect_authenticated_user = True


def staff_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Anonymous visitors go to the login page; signed-in accounts without is_staff get 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def staff_actor(request: HttpRequest) -> str:
    """The signed-in team member, as recorded in audit entries."""
    return request.user.get_username()
