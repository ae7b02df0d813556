"""Passwords never reach a log or a client: URL passwords and password= settings are masked
in store errors' messages, and clients get only what happened."""

from __future__ import annotations

from afterwork._errors import StoreError, StoreUnavailableError, mask_passwords, public_detail


def test_url_and_setting_passwords_are_masked() -> None:
    text = ("postgresql://app:s3cr%40t@db.internal:5432/prod?sslmode=require&password=p2 "
            "host=db password='two words' dbname=x redis://:r3dis@cache/0")
    masked = mask_passwords(text)
    for secret in ("s3cr%40t", "p2 ", "two words", "r3dis"):
        assert secret not in masked
    assert "postgresql://app:***@db.internal:5432/prod" in masked and "redis://:***@cache/0" in masked
    assert mask_passwords("https://example.com/a:b@c and key=value") == \
        "https://example.com/a:b@c and key=value"  # no user:password@ there


def test_store_errors_mask_passwords_and_tell_clients_only_what_happened() -> None:
    exc = StoreUnavailableError("PostgreSQL store postgresql://u:hunter2@db/x is unreachable")
    assert "hunter2" not in str(exc) and "u:***@db" in str(exc)
    assert "db" not in public_detail(exc) and "unavailable" in public_detail(exc)
    assert public_detail(StoreError("SQLite store /srv/a.db refused")) == StoreError.public_detail
