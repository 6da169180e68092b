"""Warnings that Django raises inside a method we override point at the caller.

Django warns with ``stacklevel=2`` from methods such as ``create_test_db`` (its
``serialize`` deprecation in 6.1): the warning names the file that called the
method. Through our override, that file would be ours. A warning is part of what
a project observes (Django's own tests check ``filename``), so such warnings are
caught and raised again one frame up, where the stock method would have put them.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])


def warnings_at_caller(method: _F) -> _F:
    """Decorate an override so that warnings attributed to its own frame are
    raised again from its caller's; other warnings pass unchanged."""
    module = re.escape(method.__module__) + r"\Z"
    filename = method.__code__.co_filename

    @functools.wraps(method)
    def override(*args: Any, **kwargs: Any) -> Any:
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                # Ours are caught whatever the filters say: they apply when the
                # warning is raised again, as for one raised at the caller.
                warnings.filterwarnings("always", module=module)
                return method(*args, **kwargs)
        finally:
            for caught_warning in caught:
                if caught_warning.filename == filename:
                    warnings.warn(caught_warning.message, caught_warning.category, stacklevel=2)
                else:  # already filtered where it was raised: show it as it was
                    warnings.showwarning(
                        caught_warning.message, caught_warning.category,
                        caught_warning.filename, caught_warning.lineno,
                        caught_warning.file, caught_warning.line,
                    )

    return override  # type: ignore[return-value]
