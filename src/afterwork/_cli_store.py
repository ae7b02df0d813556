"""The CLI's way into a store: find the one the user named, never create one by mistake.

Kept apart from `cli.py` and free of FastAPI and rich, so `afterwork list` starts fast.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._errors import AfterworkError, TaskNotFoundError
from ._settings import DEFAULT_URL
from .stores import Store, open_store
from .stores._pooler import LISTEN_PARAM

PREFIX_MATCHES_SHOWN = 5  # an ambiguous prefix lists this many of its matches


class StoreMissingError(AfterworkError):
    """No afterwork store at the URL: a read-only command creates none."""


class SchemaBehindError(AfterworkError):
    """The store's schema is older than this afterwork's."""


def masked(url: str) -> str:
    """The URL with its password (if any) replaced by ***, for messages; also the password
    of a direct URL given in it to listen on (`afterwork_listen_url`)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == LISTEN_PARAM for key, _ in query):
        parts = parts._replace(query=urlencode(
            [(k, masked(v) if k == LISTEN_PARAM else v) for k, v in query], safe="*"))
        url = urlunsplit(parts)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def existing_store(url: str | None, app_target: str | None, *, current: bool = True) -> Store:
    """The store named by --app, --url/AFTERWORK_URL or the default, only if it exists (and,
    with `current`, has this afterwork's schema). Never creates a file, folder or table."""
    if app_target:
        from ._worker import load  # imports the app: only when asked to

        store = load(app_target)[1].store
        where = f"{masked(store.url)} (the store of {app_target})"
    else:
        store = open_store(url or DEFAULT_URL)
        where = masked(store.url)
    if not store.exists():
        raise StoreMissingError(
            f"no afterwork store at {where}; nothing was created. Point at your app's store "
            "with --url URL or AFTERWORK_URL=URL (or --app MODULE:ATTR); `afterwork migrate "
            "--url URL` creates a new one"
        )
    if current:
        applied, newest = store.schema_version()
        if applied < newest:
            raise SchemaBehindError(
                f"the store at {where} has schema version {applied}, this afterwork needs "
                f"{newest}: run `afterwork migrate` with the same --url (or start the app)"
            )
    return store


def full_id(store: Store, text: str) -> str:
    """A task id from a full id or a unique prefix of one, as git takes commit hashes."""
    if not text:
        raise TaskNotFoundError("an empty task id: give a task id or a unique start of one")
    if store.get(text) is not None:
        return text
    found = store.ids_starting_with(text, PREFIX_MATCHES_SHOWN + 1)
    if not found:
        raise TaskNotFoundError(
            f"no task {text}: check the id with `afterwork list` (finished tasks may be purged)")
    if len(found) > 1:
        more = ", ..." if len(found) > PREFIX_MATCHES_SHOWN else ""
        shown = ", ".join(found[:PREFIX_MATCHES_SHOWN]) + more
        raise TaskNotFoundError(
            f"task id prefix {text} matches more than one task ({shown}): give more of the id")
    return found[0]
