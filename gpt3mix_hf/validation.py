"""Typed at the door: the one check of a value's kind, for every config dataclass and public constructor.

`check_fields(self)` in a dataclass's `__post_init__` reads the class's field type hints and checks each value:
an `int` refuses fractions, strings and booleans; a `float` refuses strings, booleans, NaN and infinity; a `bool`
refuses strings and numbers; a `str` refuses anything else; `X | None`, `list[X]`, `tuple[X, ...]`,
`dict[K, V]`, `Literal[...]` and classes are checked as they read, and a field whose metadata has `"choices"`
(the list `HfArgumentParser` turns into a flag's choices) must be one of them. `check_arguments` does the same
for a constructor's keyword arguments. Hints it cannot read (`Callable`, `Any`, a name imported for type checking
only) are left alone: the check refuses what is surely wrong, never what might be right.

`has_visible_text(text)` is the one test of an empty text, for task specs, prompts, parsed generations and rows.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import types
import typing
import unicodedata
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np


class ConfigTypeError(TypeError, ValueError):
    """A value of the wrong kind for a setting. Both a `TypeError` (what Python raises for a wrong kind) and a
    `ValueError` (what callers of a config and the command line already catch as "the input is wrong")."""


_NO_CHECK = object()
# A setting whose value is a credential: a message names it, never shows it.
_SECRET_NAME = re.compile(r"(^|_)(token|api_key|key|secret|password)$", re.IGNORECASE)


@functools.cache
def _resolved_hints(owner) -> dict[str, Any]:
    """The type hints of a class or function; one that cannot be resolved (a name imported for type checking
    only) is left out instead of failing them all."""
    try:
        return typing.get_type_hints(owner)
    except Exception:  # noqa: BLE001 - fall back to one hint at a time
        pass
    hints: dict[str, Any] = {}
    classes = owner.__mro__[::-1] if isinstance(owner, type) else [owner]
    for klass in classes:
        module = sys.modules.get(getattr(klass, "__module__", ""), None)
        namespace = dict(vars(module)) if module is not None else {}
        for name, annotation in getattr(klass, "__annotations__", {}).items():
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, namespace)  # noqa: S307 - the package's own annotations
                except Exception:  # noqa: BLE001 - a hint we cannot read is not checked
                    hints.pop(name, None)
                    continue
            hints[name] = annotation
    return hints


def _describe(value: Any) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"{shown} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float | np.integer | np.floating)) and not isinstance(value, bool | np.bool_)


def _problem(value: Any, hint: Any) -> str | None:
    """What is wrong with `value` for the type `hint`, as "expected ...", or None when it fits (or the hint is
    one this check does not read)."""
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(hint)
        problems = [_problem(value, option) for option in options]
        if any(problem is None for problem in problems):
            return None
        # "expected a whole number (int), not a fraction" + "expected None" -> "expected a whole number (int) or None"
        kinds = [problem.removeprefix("expected ").split(", not ")[0] for problem in problems]
        return "expected " + " or ".join(kinds)
    if hint is type(None):
        return None if value is None else "expected None"
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        return None if value in choices and type(value) in {type(c) for c in choices} else f"one of {list(choices)}"
    if hint is bool:
        if isinstance(value, bool | np.bool_):
            return None
        return "expected a boolean (True or False)" + (", not a string" if isinstance(value, str) else "")
    if hint is int:
        if _is_int(value):
            return None
        if isinstance(value, float) and math.isfinite(value):
            return "expected a whole number (int), not a fraction"
        return "expected a whole number (int)"
    if hint is float:
        if not _is_number(value):
            return "expected a number (float)"
        if not math.isfinite(float(value)):
            return "expected a finite number (not NaN or infinity)"
        return None
    if hint is str:
        return None if isinstance(value, str) else "expected a string"
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set, frozenset):
        container = origin or hint
        accepted = (list, tuple) if container in (list, tuple) else (set, frozenset, list, tuple)
        if not isinstance(value, accepted):
            return f"expected a {container.__name__}"
        args = typing.get_args(hint)
        # list[X], set[X] and tuple[X, ...] hold items of one kind; a fixed-length tuple is not checked item-wise.
        item_hint = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else None
        if item_hint is not None:
            for position, item in enumerate(value):
                problem = _problem(item, item_hint)
                if problem is not None:
                    return (f"expected a {container.__name__} whose items are {problem.removeprefix('expected ')} "
                            f"(item {position} is {_describe(item)})")
        return None
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            return "expected a dict"
        args = typing.get_args(hint)
        if len(args) == 2:
            for key, item in value.items():
                for part, part_hint in ((key, args[0]), (item, args[1])):
                    problem = _problem(part, part_hint)
                    if problem is not None:
                        what = "keys" if part is key else "values"
                        return f"expected a dict whose {what} are {problem.removeprefix('expected ')} (entry {key!r})"
        return None
    if isinstance(hint, type) and origin is None:
        if hint.__module__ == "typing" or getattr(hint, "_is_protocol", False):
            return None
        try:
            return None if isinstance(value, hint) else f"expected a {hint.__name__}"
        except TypeError:
            return None
    return None


def check_value(owner: str, name: str, value: Any, hint: Any = _NO_CHECK, choices=None) -> None:
    """Raise a `ConfigTypeError` naming `owner.name`, the value and what is expected when `value` does not fit
    `hint`, or is not one of `choices`. The value of a setting named like a credential is never shown."""
    if hint is not _NO_CHECK:
        problem = _problem(value, hint)
        if problem is not None:
            expected = problem if problem.startswith("expected") else f"expected {problem}"
            shown = f"<hidden> ({type(value).__name__})" if _SECRET_NAME.search(name) else _describe(value)
            raise ConfigTypeError(f"{owner}.{name}={shown}: {expected}.")
    if choices is not None and value is not None:
        choices = list(choices)
        # The choices of a list field (an `nargs` flag) are those of each item.
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if not any(item == choice and type(item) is type(choice) for choice in choices):
                raise ConfigTypeError(f"{owner}.{name}={_describe(value)}: choose one of {choices}.")


def check_fields(instance, skip: tuple[str, ...] = (), inherited_from: type | None = None) -> None:
    """Check every field of the dataclass `instance` against its type hint (and its metadata's `"choices"`).

    Call it first in `__post_init__` (after turning nested dicts read from a file into their objects). With
    `inherited_from` (a base class that is not ours, e.g. `TrainingArguments`), the fields it defines are checked
    only where they are plain numbers or booleans: its other fields keep the base class's own checks."""
    if not is_dataclass(instance):
        raise TypeError(f"check_fields takes a dataclass instance, got {type(instance).__name__}.")
    owner = type(instance).__name__
    hints = _resolved_hints(type(instance))
    for field in fields(instance):
        if field.name in skip or not field.init:
            continue
        hint = hints.get(field.name, _NO_CHECK)
        if inherited_from is not None and field.name in inherited_from.__dataclass_fields__ and not _plain(hint):
            continue
        value = getattr(instance, field.name)
        check_value(owner, field.name, value, hint, field.metadata.get("choices"))


def _plain(hint: Any) -> bool:
    """Whether `hint` is `int`, `float` or `bool`, or one of them `| None`."""
    options = [option for option in typing.get_args(hint) if option is not type(None)] or [hint]
    return len(options) == 1 and options[0] in (int, float, bool)


def check_arguments(function, arguments: dict[str, Any], owner: str | None = None,
                    choices: dict[str, tuple] | None = None) -> None:
    """Check a call's keyword `arguments` against the annotations of `function` (e.g. `type(self).__init__`),
    and against `choices` where given; `owner` names them in the message (default: the function's class)."""
    owner = owner or function.__qualname__.rsplit(".", 1)[0]
    hints = _resolved_hints(function)
    for name, value in arguments.items():
        check_value(owner, name, value, hints.get(name, _NO_CHECK), (choices or {}).get(name))


# Letters, numbers, punctuation and symbols are visible; separators (Z*), control, format, surrogate and
# private-use characters (C*) and combining marks without a base (M*) are not, nor the few letters and
# symbols that render as blanks.
_INVISIBLE_CATEGORIES = ("Z", "C", "M")
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible_text(text) -> bool:
    """Whether `text` is a string with at least one visible character: whitespace of any kind (`\\u00a0`, ...),
    format characters (`\\u200b`, `\\ufeff`, ...), combining marks and control characters alone are empty text.

    >>> has_visible_text("\\u200b\\u00a0 ")
    False
    """
    if not isinstance(text, str):
        return False
    for char in text:
        if unicodedata.category(char)[0] not in _INVISIBLE_CATEGORIES and char not in _BLANK_GLYPHS:
            return True
    return False
