"""Task names <-> functions: what a runner may run.

A stored task names its function as `module:qualname`. A runner runs it only if this process
registered that name (`@task`, or the application added the function itself), or the module
belongs to the application's own packages: a plain module-level function there recovers after
a restart. Any other name (say `os:system`) never runs; the task is recorded as failed.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Generic, ParamSpec, TypeVar, overload

from ._errors import UnknownTaskError

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Per-task options; `None` means the Afterwork instance's default."""

    max_attempts: int | None = None
    timeout_seconds: float | None = None
    backoff_seconds: float | None = None  # first retry's delay; doubles each attempt
    backoff_max_seconds: float | None = None
    queue: str | None = None  # None: "default"
    priority: int | None = None  # higher first; None: 0
    rate_limit: tuple[int, float] | None = None  # (starts, per seconds), across all runners
    public_result: bool | None = None  # the public status endpoint shows what it returned
    # per call only (`.options(...)`):
    delay_seconds: float | None = None
    run_at: float | None = None  # Unix time; a datetime is converted by `.options`
    key: str | None = None  # de-duplication: one queued or running task per key


class Task(Generic[P, R]):
    """A function registered under a stable name, with its options.

    Calling it calls the function; `add_task(task, ...)` stores the name and the options.

        @task(max_attempts=5, timeout_seconds=30)
        async def send_email(to: str) -> None: ...

        tasks.add_task(send_email, "a@example.com")
        tasks.add_task(send_email.options(max_attempts=1), "b@example.com")
    """

    def __init__(self, func: Callable[P, R], name: str, options: TaskOptions) -> None:
        self.func = func
        self.name = name
        self.task_options = options
        self.__name__ = getattr(func, "__name__", name)
        self.__qualname__ = getattr(func, "__qualname__", name)
        self.__module__ = getattr(func, "__module__", "")
        self.__doc__ = func.__doc__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def options(
        self, *, max_attempts: int | None = None, timeout_seconds: float | None = None,
        queue: str | None = None, priority: int | None = None, delay: float | None = None,
        run_at: float | dt.datetime | None = None, key: str | None = None,
    ) -> Task[P, R]:
        """A copy with options for one call of `add_task`, spelled apart from the task's own
        keyword arguments:

            tasks.add_task(send_email.options(delay=600, key=f"welcome:{user_id}"), user_id)
        """
        when = run_at.timestamp() if isinstance(run_at, dt.datetime) else run_at
        changed = {k: v for k, v in (
            ("max_attempts", max_attempts), ("timeout_seconds", timeout_seconds), ("queue", queue),
            ("priority", priority), ("delay_seconds", delay), ("run_at", when), ("key", key),
        ) if v is not None}
        return Task(self.func, self.name, replace(self.task_options, **changed))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<afterwork task {self.name}>"


@overload
def task(func: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *, name: str | None = None, max_attempts: int | None = None,
    timeout_seconds: float | None = None, backoff_seconds: float | None = None,
    backoff_max_seconds: float | None = None, queue: str | None = None,
    priority: int | None = None, rate_limit: tuple[int, float] | None = None,
    public_result: bool | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    func: Callable[P, R] | None = None, /, *, name: str | None = None,
    max_attempts: int | None = None, timeout_seconds: float | None = None,
    backoff_seconds: float | None = None, backoff_max_seconds: float | None = None,
    queue: str | None = None, priority: int | None = None,
    rate_limit: tuple[int, float] | None = None, public_result: bool | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Register a module-level function as a task, optionally with options.

        @task
        def notify(host: str) -> None: ...

        @task(max_attempts=5, timeout_seconds=30, backoff_seconds=2, backoff_max_seconds=600)
        async def charge(order_id: str) -> None: ...

        @task(queue="webhooks", priority=5, rate_limit=(10, 1.0))  # 10 starts a second at most
        async def call_webhook(url: str) -> None: ...

    `public_result=True`: the public status endpoint (`GET .../tasks/{id}`, which anyone
    holding the id may call) shows what the task returned, so a page can fetch what it waits
    for. Off by default: operators see every result, the public none.

    Calling `task(fn)` at the call site also works: `tasks.add_task(task(fn).options(delay=60))`.
    """
    options = TaskOptions(max_attempts=max_attempts, timeout_seconds=timeout_seconds,
                          backoff_seconds=backoff_seconds, backoff_max_seconds=backoff_max_seconds,
                          queue=queue, priority=priority, rate_limit=rate_limit,
                          public_result=public_result)

    def decorate(f: Callable[P, R]) -> Task[P, R]:
        registered = Task(f, name or _qualified_name(f), options)
        REGISTRY.register(registered.name, registered)
        return registered

    return decorate(func) if func is not None else decorate


def _module_name(func: Any) -> str:
    module = str(getattr(func, "__module__", "") or "")
    if module == "__main__":  # `python -m pkg.mod` runs as __main__; its spec has the real name
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            return str(spec.name)
    return module


def _qualified_name(func: Any) -> str:
    return f"{_module_name(func)}:{func.__qualname__}"


def why_not_storable(func: object) -> str | None:
    """None when `func` can be found again by name after a restart; otherwise the reason."""
    target = func.func if isinstance(func, Task) else func
    if isinstance(func, Task):
        return None
    if not inspect.isfunction(target):
        return f"it is a {type(target).__name__}, not a module-level function"
    qualname = target.__qualname__
    if "<lambda>" in qualname:
        return "it is a lambda"
    if "<locals>" in qualname:
        return "it is defined inside another function (a closure)"
    if _lookup(target.__module__, qualname) is not target:
        return f"{target.__module__}.{qualname} does not name this function"
    return None


def _lookup(module_name: str, qualname: str) -> object:
    obj: object = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


class Registry:
    """The names this process may run, and the application packages it may import from."""

    def __init__(self) -> None:
        self._by_name: dict[str, Callable[..., Any]] = {}
        self._names: dict[Any, str | None] = {}
        self._roots: set[str] = {"__main__"}
        self._dirs: dict[str, set[str]] = {}  # root package -> the folders it was loaded from
        self._lock = threading.Lock()

    def rate_limits(self) -> dict[str, tuple[int, float]]:
        """Task name -> (starts, per seconds), for the tasks registered with a rate limit."""
        return {name: f.task_options.rate_limit for name, f in list(self._by_name.items())
                if isinstance(f, Task) and f.task_options.rate_limit is not None}

    def rate_limits_by_queue(self) -> dict[str, dict[str, tuple[int, float]]]:
        """Queue -> {task name: (starts, per seconds)}: each rate-limited task under the queue
        it was registered with (a call may send it elsewhere; its limit holds there too)."""
        found: dict[str, dict[str, tuple[int, float]]] = {}
        for name, f in list(self._by_name.items()):
            if isinstance(f, Task) and f.task_options.rate_limit is not None:
                found.setdefault(f.task_options.queue or "default", {})[name] = f.task_options.rate_limit
        return found

    def known(self, name: str) -> Callable[..., Any] | None:
        """The function registered under `name`, without importing anything."""
        return self._by_name.get(name)

    def rate_limit_of(self, name: str) -> tuple[int, float] | None:
        found = self._by_name.get(name)
        return found.task_options.rate_limit if isinstance(found, Task) else None

    def register(self, name: str, func: Callable[..., Any]) -> None:
        with self._lock:
            self._by_name[name] = func

    def allow_packages(self, modules: Iterable[str]) -> None:
        with self._lock:
            for module in modules:
                if not module:
                    continue
                root = module.split(".", 1)[0]
                self._roots.add(root)
                self._dirs.setdefault(root, set()).update(_package_dirs(module))

    def name_for(self, func: Callable[..., Any]) -> str | None:
        """The stored name of `func`, remembered as runnable; None if it cannot be stored."""
        if isinstance(func, Task):
            return func.name
        try:
            return self._names[func]
        except KeyError:
            pass
        except TypeError:  # unhashable callable object
            return None
        name = None if why_not_storable(func) else _qualified_name(func)
        with self._lock:
            self._names[func] = name
            if name is not None:
                self._by_name.setdefault(name, func)
        return name

    def resolve(self, name: str) -> Callable[..., Any]:
        found = self._by_name.get(name)
        if found is not None:
            return found
        module, _, qualname = name.partition(":")
        if not module or not qualname:
            raise UnknownTaskError(f"stored task name {name!r} is not of the form module:function")
        if module.split(".", 1)[0] not in self._roots:
            raise UnknownTaskError(
                f"task {name!r} was not registered in this process and {module!r} is not one of "
                f"the application's packages ({', '.join(sorted(self._roots))}); afterwork runs "
                "only functions the application registered (@afterwork.task) or added itself"
            )
        if module not in sys.modules and not self._inside_app(module):
            # Found nowhere in the application's own folders (a namespace package's other
            # parts, a third-party module that shares the name): never import it, so that
            # none of its code runs.
            raise UnknownTaskError(
                f"task {name!r}: module {module!r} is not a file of the application's packages "
                f"({', '.join(sorted(self._dirs.get(module.split('.', 1)[0], ())))}); afterwork "
                "imports only the application's own modules"
            )
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise UnknownTaskError(f"task {name!r}: importing {module!r} failed: {exc!r}") from exc
        obj = _lookup(module, qualname)
        func = obj.func if isinstance(obj, Task) else obj
        if not inspect.isfunction(func) or func.__module__ != module:
            raise UnknownTaskError(
                f"task {name!r}: {module}.{qualname} is not a function defined in {module} "
                "(renamed or removed since the task was stored?)"
            )
        self.register(name, obj)  # type: ignore[arg-type]
        return obj  # type: ignore[return-value]

    def _inside_app(self, module: str) -> bool:
        """Whether `module`'s file lies in a folder the application was loaded from, found
        level by level without importing anything."""
        parts = module.split(".")
        allowed = self._dirs.get(parts[0], set())
        if not allowed:
            return False
        folders = sorted(allowed)
        for depth in range(1, len(parts)):
            name = ".".join(parts[: depth + 1])
            loaded = sys.modules.get(name)
            if loaded is not None:
                origin = getattr(loaded, "__file__", None)
                search = list(getattr(loaded, "__path__", []) or [])
            else:
                spec = importlib.machinery.PathFinder.find_spec(name, folders)
                if spec is None:
                    return False
                origin = spec.origin if spec.has_location else None
                search = list(spec.submodule_search_locations or [])
            if origin and not _under(origin, allowed):
                return False
            folders = search
        return True


def _under(path: str, folders: Iterable[str]) -> bool:
    real = os.path.realpath(path)
    return any(real.startswith(folder + os.sep) for folder in folders)


def _package_dirs(module: str) -> set[str]:
    """The folders of `module`'s top-level package, as the application loaded it (for a
    package: its own folder; for a lone module: nothing beyond the module itself)."""
    root = module.split(".", 1)[0]
    found = sys.modules.get(root)
    paths: list[str] = list(getattr(found, "__path__", []) or [])
    if found is None:
        try:
            spec = importlib.util.find_spec(root)  # a top-level name: imports nothing
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            paths = list(spec.submodule_search_locations or [])
    if "." in module and module in sys.modules and paths:
        # A namespace package spans folders: keep the one that holds the application's module.
        file = os.path.realpath(getattr(sys.modules[module], "__file__", "") or "")
        own = [p for p in paths if file.startswith(os.path.realpath(p) + os.sep)]
        paths = own or paths
    return {os.path.realpath(p) for p in paths}


REGISTRY = Registry()
