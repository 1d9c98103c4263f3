#!/usr/bin/env python3
"""Django's command-line utility.

`./manage.py …` and `python manage.py …` work from any shell: run by another interpreter than the checkout's
.venv (made by `make install`, `make run` or `make test`), this file runs itself again with .venv/bin/python. Without
DJANGO_SECRET_KEY it uses the development key `make run` keeps in var/secret-key (when there is one, and then runs
as development, like `make run`), so commands see the same keyed pseudonyms as the running service."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _use_checkout_venv() -> None:
    """Re-executes this command with the checkout's .venv interpreter when another one runs it (no-op otherwise,
    and when there is no .venv, e.g. in a deployment that installs the packages elsewhere)."""
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])


def _development_secret() -> None:
    """The development secret of `make run` (scripts/run.sh) when DJANGO_SECRET_KEY is not set."""
    secret = ROOT / "var" / "secret-key"
    if not os.environ.get("DJANGO_SECRET_KEY") and secret.is_file():
        os.environ["DJANGO_SECRET_KEY"] = secret.read_text().strip()
        os.environ.setdefault("DJANGO_ENV", "development")  # the key of `make run`: a development checkout
        if not (os.environ.get("CERTIFICATE_SIGNING_KEY") or os.environ.get("CERTIFICATE_SIGNING_KEY_FILE")):
            os.environ.setdefault("CERTIFICATE_SIGNING_KEY_AUTOGENERATE", "1")


def main() -> None:
    _use_checkout_venv()
    _development_secret()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:  # missing secrets or keys: one line saying what, not a traceback
        hint = ""
        if not os.environ.get("DJANGO_SECRET_KEY"):
            hint = (
                "; on a development machine `make run` once creates the key in var/secret-key that this uses"
            )
        sys.exit(f"manage.py: {exc}{hint}")


if __name__ == "__main__":
    main()
