"""The values of ``drlab sweep --set NAME=V1,V2,...``, from text to each config field's type.

  int / float     ``lr=1e-3,3e-4``  ``batch_size=32,64``  (``100_000`` and ``1e5`` work for ints)
  bool            ``shared_body=true,false``  (also yes/no, on/off, 1/0)
  str / Literal   ``replay=uniform,per``  (a Literal must be one of its choices)
  tuple of ints   ``hidden=64x64,128x128x128``  (sizes joined by ``x``)
  optional        ``stop_threshold=none,200``  (``none`` is None)
Commas separate values, so no value may contain one. Names are the config's field names; dashes
work for underscores (``--set batch-size=32``).
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Literal

from drlab.errors import DrlabError

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def parse_set(text: str) -> tuple[str, list[str]]:
    """``NAME=V1,V2`` -> (name with dashes as underscores, raw values)."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise DrlabError(f"--set {text!r}: expected NAME=VALUE[,VALUE...]")
    raw = [v.strip() for v in values.split(",")]
    if not values.strip() or any(not v for v in raw):
        raise DrlabError(f"--set {text!r}: empty value (values are separated by commas)")
    return name, raw


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise DrlabError(f"--seeds {text!r}: expected integers separated by commas, e.g. 0,1,2") from None
    if any(s < 0 for s in seeds):
        raise DrlabError(f"--seeds {text!r}: seeds must be >= 0")
    if len(set(seeds)) != len(seeds):
        raise DrlabError(f"--seeds {text!r}: a seed is repeated")
    return seeds


def parse_value(name: str, tp: Any, text: str) -> Any:
    """One ``--set`` value from its string to the field's type, or a one-line DrlabError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    low = text.lower()
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and low in ("none", "null"):
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return parse_value(name, option, text)
            except DrlabError as err:
                errors.append(str(err))
        raise DrlabError(errors[0] + (" or none" if type(None) in args else ""))
    if origin is Literal:
        for choice in args:
            if str(choice).lower() == low:
                return choice
        raise DrlabError(f"{name}: {text!r} is not one of {', '.join(map(str, args))}")
    if tp is bool:
        if low in TRUE_WORDS:
            return True
        if low in FALSE_WORDS:
            return False
        raise DrlabError(f"{name}: {text!r} is not a bool (true or false)")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number.is_integer():
            return int(number)
        raise DrlabError(f"{name}: {text!r} is not an integer")
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise DrlabError(f"{name}: {text!r} is not a number") from None
    if tp is str:
        return text
    if origin is tuple and args and all(a is int or a is Ellipsis for a in args):
        try:
            sizes = tuple(int(part) for part in text.lower().split("x"))
        except ValueError:
            raise DrlabError(f"{name}: {text!r} is not a tuple of integers (write sizes joined by x, e.g. 64x64)") from None
        if args[-1] is not Ellipsis and len(sizes) != len(args):
            raise DrlabError(f"{name}: {text!r} needs {len(args)} integers joined by x")
        return sizes
    raise DrlabError(f"{name} (type {tp}) cannot be set by drlab sweep")


def format_value(value: Any) -> str:
    """The value as --set syntax (also used in run-directory names and table rows)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "x".join(map(str, value))
    if isinstance(value, float):
        return repr(value)
    return str(value)
