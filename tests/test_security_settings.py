"""Deploy-safe defaults: outside development the service refuses to start without its secrets, `check --deploy`
is clean with a production-like environment, mail never goes to files by default, every page carries a
Content-Security-Policy its templates respect, and the console's pages are never cached."""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings

from config.mail import PruningFileBackend

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PSEUDONYM_", "EMAIL_"))}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings.base", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "PSEUDONYM_KEY": secrets.token_urlsafe(32),
    "DJANGO_HTTPS": "1",
    "DJANGO_ALLOWED_HOSTS": "erasure.example.org",
}


def settings_values(*names: str, **env: str) -> dict[str, str]:
    code = "from django.conf import settings; " + "; ".join(f"print(settings.{name})" for name in names)
    lines = run_manage("shell", "-v", "0", "-c", code, **env).stdout.strip().splitlines()
    return dict(zip(names, lines[-len(names) :], strict=True))


def test_outside_development_the_service_refuses_to_start_without_its_secrets():
    refused = run_manage("check", DJANGO_SECRET_KEY=PRODUCTION["DJANGO_SECRET_KEY"])
    assert refused.returncode != 0 and "PSEUDONYM_KEY must be set outside development" in refused.stderr
    refused = run_manage("check")
    assert "DJANGO_SECRET_KEY and PSEUDONYM_KEY must be set" in refused.stderr
    assert run_manage("check", DJANGO_ENV="development").returncode == 0


def test_check_deploy_is_clean_with_a_production_like_environment():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mail_goes_to_pruned_files_only_in_development_and_cookies_are_secure_behind_https():
    production = settings_values("EMAIL_BACKEND", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", **PRODUCTION)
    assert production == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "SESSION_COOKIE_SECURE": "True",
        "CSRF_COOKIE_SECURE": "True",
    }
    development = settings_values("EMAIL_BACKEND", "SESSION_COOKIE_SECURE", DJANGO_ENV="development")
    assert development == {
        "EMAIL_BACKEND": "config.mail.PruningFileBackend",
        "SESSION_COOKIE_SECURE": "False",
    }


def test_the_development_mail_backend_prunes_old_files_and_writes_private_ones(tmp_path, settings):
    # given: a mail file two days old
    settings.EMAIL_FILE_RETENTION_HOURS = 24
    old = tmp_path / "20000101-000000-1.log"
    old.write_text("To: someone@example.test\n?token=secret")
    os.utime(old, (time.time() - 48 * 3600, time.time() - 48 * 3600))
    # when: a new mail is written
    backend = PruningFileBackend(file_path=str(tmp_path))
    backend.send_messages([mail.EmailMessage("s", "b", "from@example.test", ["to@example.test"])])
    # then: the old file is gone, the new one is readable by its owner only
    files = list(tmp_path.glob("*.log"))
    assert not old.exists() and len(files) == 1
    assert files[0].stat().st_mode & 0o077 == 0


def test_every_page_carries_the_content_security_policy_and_console_pages_are_not_cached(client, db):
    staff = get_user_model().objects.create_user("dpo", password="correct-horse-battery", is_staff=True)
    home = client.get("/")
    assert "script-src 'self'" in home["Content-Security-Policy"]
    assert "unsafe-inline" not in home["Content-Security-Policy"]
    client.force_login(staff)
    console = client.get("/privacy-team/")
    assert console.status_code == 200 and "no-store" in console["Cache-Control"]
    assert "Content-Security-Policy" in console
    assert "no-store" in client.get("/privacy-team/login/")["Cache-Control"]


def test_templates_hold_no_inline_script_or_style():
    """The policy allows scripts and styles from files only; keep the templates so."""
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        inline_scripts = [m for m in re.findall(r"<script\b[^>]*>", text) if "src=" not in m]
        if inline_scripts or "<style" in text or re.search(r"\sstyle=|\son[a-z]+=", text):
            offenders.append(template.name)
    assert offenders == []


def test_staff_sessions_are_short(settings):
    assert settings.SESSION_COOKIE_AGE <= 8 * 3600 and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


@override_settings(DEBUG=False)
def test_api_docs_load_their_script_from_a_url_not_inline(client, db):
    page = client.get("/api/docs/").content.decode()
    assert re.findall(r"<script\b[^>]*>", page) and all(
        "src=" in m for m in re.findall(r"<script\b[^>]*>", page)
    )
