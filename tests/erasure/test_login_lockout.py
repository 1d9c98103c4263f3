"""Staff sign-in resists brute force (django-axes): after AXES_FAILURE_LIMIT failures an account is locked, and so
is an address, on the console and on /admin/, even for the right password; and every failure reads the same."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

PASSWORD = "correct-horse-battery"
CONSOLE, ADMIN = "/privacy-team/login/", "/admin/login/"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("dpo", password=PASSWORD, is_staff=True, is_superuser=True)


def attempt(path: str, username: str, password: str, address: str = "203.0.113.7") -> object:
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", [CONSOLE, ADMIN])
def test_an_account_is_locked_after_repeated_failures_even_for_the_right_password(staff, settings, path):
    answers = [
        # from a new address each time: the lock below is the account's, not the address's
        attempt(path, "dpo", f"wrong-{number}", f"198.51.100.{number}").status_code
        for number in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the last failure locks
    locked = attempt(path, "dpo", PASSWORD, "198.51.100.200")
    assert locked.status_code == 429 and "Too many failed sign-in attempts" in locked.content.decode()


def test_an_address_is_locked_after_failures_on_many_accounts(staff, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        attempt(CONSOLE, f"guess-{number}", "wrong")
    assert attempt(CONSOLE, "dpo", PASSWORD).status_code == 429
    # another address still signs the account in
    assert attempt(CONSOLE, "dpo", PASSWORD, "192.0.2.44").status_code == 302


def test_every_failure_reads_the_same(staff):
    get_user_model().objects.create_user("plain", password=PASSWORD)
    answers = {
        "wrong password": attempt(CONSOLE, "dpo", "nope", "192.0.2.1"),
        "unknown account": attempt(CONSOLE, "nobody", "nope", "192.0.2.2"),
        "right password, not staff": attempt(CONSOLE, "plain", PASSWORD, "192.0.2.3"),
    }
    errors = {}
    for name, response in answers.items():
        assert response.status_code == 200, name
        page = response.content.decode()
        errors[name] = page[page.find("correct username") - 40 : page.find("correct username") + 80]
    assert "correct username" in errors["wrong password"]
    assert len(set(errors.values())) == 1, errors


def test_a_non_staff_sign_in_with_the_right_password_counts_as_a_failure(staff, settings):
    get_user_model().objects.create_user("plain", password=PASSWORD)
    for number in range(settings.AXES_FAILURE_LIMIT):
        attempt(CONSOLE, "plain", PASSWORD, f"198.51.100.{number}")
    assert attempt(CONSOLE, "plain", PASSWORD, "198.51.100.250").status_code == 429
