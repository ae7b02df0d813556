"""The store URL's pooler parameters: taken out before psycopg sees the URL, checked."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from afterwork import ConfigurationError
from afterwork.stores._pooler import pooler_options


def test_a_plain_url_is_left_as_it_is() -> None:
    url = "postgresql://app@db:5432/app?sslmode=require"
    options = pooler_options(url)
    assert (options.dsn, options.transaction_pooling, options.listen_dsn) == (url, False, None)
    assert options.connect_kwargs() == {}


def test_transaction_pooling_with_a_direct_listen_url() -> None:
    direct = "postgresql://app:secret@db-direct:5432/app?application_name=listen"
    options = pooler_options("postgresql://app@pooler:6432/app?sslmode=require"
                             f"&afterwork_pooler=transaction&afterwork_listen_url={quote(direct, safe='')}")
    assert options.dsn == "postgresql://app@pooler:6432/app?sslmode=require"
    assert options.transaction_pooling
    assert options.listen_dsn == direct
    assert options.connect_kwargs() == {"prepare_threshold": None}


def test_session_pooling_needs_nothing() -> None:
    options = pooler_options("postgresql://app@pooler:6432/app?afterwork_pooler=session")
    assert (options.dsn, options.transaction_pooling) == ("postgresql://app@pooler:6432/app", False)


@pytest.mark.parametrize(("query", "says"), [
    ("afterwork_pooler=statement", "set pool_mode = transaction"),
    ("afterwork_pooler=yes", "use afterwork_pooler=transaction"),
    ("afterwork_listen_url=db-direct", "URL of PostgreSQL itself"),
])
def test_bad_pooler_parameters_say_what_to_write(query: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        pooler_options(f"postgresql://app@pooler:6432/app?{query}")


def test_the_password_of_the_direct_listen_url_is_masked_in_messages() -> None:
    from afterwork._cli_store import masked

    direct = quote("postgresql://app:secret@db-direct/app", safe="")
    shown = masked(f"postgresql://app:pw@pooler:6432/app?afterwork_listen_url={direct}")
    assert "secret" not in shown and "pw" not in shown.replace("pooler", "")
