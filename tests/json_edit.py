"""Editing a nested JSON object by a dotted path: the tests' way of breaking one field of an artifact."""

from __future__ import annotations


def set_path(path: str, value):
    """A function ``change(obj)`` that sets ``obj[a][b]...[last] = value`` for ``path = "a.b....last"``,
    or deletes that key when ``value`` is ``KeyError``."""
    def change(obj):
        *parents, last = path.split(".")
        for key in parents:
            obj = obj[key]
        if value is KeyError:
            del obj[last]
        else:
            obj[last] = value
    return change
