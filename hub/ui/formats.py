"""How the console writes values for people: dollar amounts, numbers in form fields, and names that may carry
Unicode direction controls. Registered as Jinja filters (`hub.ui.web.templates`)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

SIGNIFICANT = 4
"""Digits kept of an amount under a dollar, or over one before the cents: $0.00002600 is "$0.000026", $1.875 stays."""
SMALLEST = 1e-12
"""Below this an amount is written "<$0.000000000001", not as a long run of zeros."""
LARGEST = 1e15
"""From this on an amount is written with an exponent: a budget of 1e300 must not be 400 digits wide."""
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def money(value: Any) -> str:
    """A dollar amount: cents at least ($10.50, $0.50), and as many decimals as a fraction of a cent needs to show
    SIGNIFICANT digits ($0.000026, $0.075), so that a small spend or price never reads as $0.00, nor as 1e-06.
    None is "—"; anything that is not a number is written as it is."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    amount = float(value)
    size = abs(amount)
    sign = "-" if amount < 0 else ""
    if not math.isfinite(amount) or size >= LARGEST:
        return f"{sign}${size:.4g}"
    if size == 0:
        return "$0.00"
    if size < SMALLEST:
        return f"{sign}<$0.000000000001"
    decimals = max(2, SIGNIFICANT - 1 - math.floor(math.log10(size)))
    text = f"{size:,.{decimals}f}"
    whole, _, cents = text.partition(".")
    return f"{sign}${whole}.{cents[:2]}{cents[2:].rstrip('0')}"


def plain_number(value: Any) -> str:
    """A number as it would be typed into a form field: 0.000001, never 1e-06 (which the field would send back
    unchanged, but nobody reads it as a millionth). None is empty."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isfinite(value):
        return format(Decimal(repr(value)), "f")
    return str(value)


def visible(text: Any) -> str:
    """`text` with each Unicode direction control written out ("[U+202E]"): in a name, an override or isolate
    reverses what follows it, so one key's alias could be made to read like another's."""
    return "" if text is None else _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", str(text))
