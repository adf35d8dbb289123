"""Python values to DynamoDB attribute values and back, as a job record stores them.

boto3's TypeSerializer does the same through Decimals, but importing it imports all of boto3 (a fifth
of `skydeck jobs list`'s time, which needs only botocore). The rules are the record's own: a float is
kept as its shortest decimal text, an integer stays an integer, and DynamoDB's lack of NaN and infinity
makes a non-finite float unknown (NULL) rather than a refused write.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

MAX_DIGITS = 38  # DynamoDB's precision for a number
MIN_EXPONENT, MAX_EXPONENT = -130, 125  # and its range: 1E-130 to 9.99...E+125


def to_dynamo(value: Any) -> dict[str, Any]:
    """One Python value (str, int, float, bool, None, bytes, list, tuple, dict, set) as an attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        number = _number(value)
        return {"NULL": True} if number is None else {"N": number}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, dict):
        return {"M": {_key(k): to_dynamo(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_dynamo(v) for v in value]}
    if isinstance(value, set | frozenset):
        return _set(value)
    raise TypeError(f"a job record cannot hold a {type(value).__name__} ({value!r:.60})")


def from_dynamo(attribute: dict[str, Any]) -> Any:
    """One attribute value as Python: a number with no fractional digits is an int, any other a float."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return _from_number(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_dynamo(v) for k, v in value.items()}
    if kind == "L":
        return [from_dynamo(v) for v in value]
    if kind == "B":
        return bytes(value)
    if kind == "SS":
        return list(value)
    if kind == "NS":
        return [_from_number(v) for v in value]
    if kind == "BS":
        return [bytes(v) for v in value]
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def from_dynamo_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: from_dynamo(v) for k, v in item.items()}


def _number(value: int | float | Decimal) -> str | None:
    if isinstance(value, float):
        # DynamoDB has no NaN or infinity, and no number outside its range: a diverged loss is stored as
        # unknown, not refused with the heartbeat that carries it
        if not math.isfinite(value) or (value and not 10.0**MIN_EXPONENT <= abs(value) < 10.0 ** (MAX_EXPONENT + 1)):
            return None
        value = Decimal(repr(value))
    elif isinstance(value, Decimal) and not value.is_finite():
        return None
    text = str(value)
    number = Decimal(text)
    digits = len(number.as_tuple().digits)
    if digits > MAX_DIGITS:
        raise ValueError(f"{text[:20]}... has {digits} digits; DynamoDB keeps numbers to {MAX_DIGITS}")
    if number and not MIN_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        raise ValueError(f"{text} is outside DynamoDB's numbers (1E{MIN_EXPONENT} to 9.99E+{MAX_EXPONENT})")
    return text


def _from_number(text: str) -> int | float:
    number = Decimal(text)
    # DynamoDB keeps numbers as decimal text: no fractional digits means it was an integer
    exponent = number.as_tuple().exponent
    return int(number) if isinstance(exponent, int) and exponent >= 0 else float(number)


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a job record's map keys are strings, not {type(key).__name__} ({key!r:.60})")
    return key


def _set(values: set[Any] | frozenset[Any]) -> dict[str, Any]:
    if all(isinstance(v, str) for v in values):
        return {"SS": sorted(values)}
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values):
        numbers = [_number(v) for v in values]
        if None in numbers:
            raise ValueError("DynamoDB has no NaN or infinity in a number set")
        return {"NS": sorted(n for n in numbers if n is not None)}
    if all(isinstance(v, bytes) for v in values):
        return {"BS": sorted(values)}
    raise TypeError("a set in a job record holds strings only, numbers only or bytes only")
