"""EAN codes of connections and allocation points (REG-1).

A Dutch connection EAN has 18 digits and ends in a GS1 mod-10 check digit: weights 3
and 1 alternate from the rightmost data digit (which gets 3), and the check digit makes
the weighted sum a multiple of 10. Codes begin with 87 (GS1 Netherlands). The primary
allocation point shares the connection's EAN; every secondary allocation point has
its own (Netcode elektriciteit art. 2.4 lid 5 and 6).
"""

from __future__ import annotations

from meetpunt.domain.findings import Finding
from meetpunt.errors import DomainError

EAN_LENGTH = 18

RULE_NON_DIGIT = "REG-1.non_digit"
RULE_LENGTH = "REG-1.length"
RULE_CHECK_DIGIT = "REG-1.check_digit"


class InvalidEanError(DomainError):
    """An EAN code broke REG-1; ``findings`` holds the one rule it broke."""


def gs1_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit for the digits of ``body`` (any length).

    The rightmost digit of ``body`` gets weight 3, the next weight 1, and so on.
    """
    if body.isascii() and body.isdigit():  # the usual case, summed in C (register imports)
        digits = body[::-1].encode()
        odd, even = digits[0::2], digits[1::2]
        total = 3 * (sum(odd) - 48 * len(odd)) + sum(even) - 48 * len(even)
        return (10 - total % 10) % 10
    total = 0
    for position, char in enumerate(reversed(body)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def check_ean(code: str) -> Finding | None:
    """Return the broken rule of ``code``, or ``None`` when it is a valid EAN-18.

    The checks run in the order that gives the most useful advice: characters,
    length, then the check digit.
    """
    for index, char in enumerate("" if code.isascii() and code.isdigit() else code):
        if char not in "0123456789":
            return Finding(
                RULE_NON_DIGIT,
                f"EAN {code!r} has {char!r} at position {index + 1}; an EAN code is digits "
                "only: remove spaces, letters and punctuation",
            )
    if len(code) != EAN_LENGTH:
        return Finding(
            RULE_LENGTH,
            f"EAN {code!r} has {len(code)} digits; an EAN code has exactly {EAN_LENGTH}: "
            "look for a missing or extra digit",
        )
    expected = gs1_check_digit(code[:-1])
    if int(code[-1]) != expected:
        return Finding(
            RULE_CHECK_DIGIT,
            f"EAN {code!r} ends in check digit {code[-1]} but its first 17 digits need "
            f"{expected}: one digit is probably mistyped or two are swapped; copy the code "
            "again from the source",
        )
    return None


def is_valid_ean(code: str) -> bool:
    """True when ``code`` is a valid 18-digit EAN (REG-1)."""
    return check_ean(code) is None


def assert_valid_ean(code: str) -> str:
    """Return ``code`` when valid; raise :class:`InvalidEanError` naming the rule otherwise."""
    finding = check_ean(code)
    if finding is not None:
        raise InvalidEanError(finding.message, [finding])
    return code


def complete_ean(body: str) -> str:
    """Append the check digit to a 17-digit ``body`` to make a valid EAN-18."""
    if len(body) != EAN_LENGTH - 1 or not (body.isascii() and body.isdigit()):
        raise InvalidEanError(
            f"an EAN body must be {EAN_LENGTH - 1} digits, got {body!r}",
            [Finding(RULE_LENGTH, f"EAN body {body!r} is not 17 digits")],
        )
    return body + str(gs1_check_digit(body))


def ean_from_serial(prefix: str, serial: int) -> str:
    """The EAN made of ``prefix``, ``serial`` zero-padded to fill 17 digits, and the check.

    Used to give new allocation points their own code (REG-5): the operator owns
    ``prefix`` and numbers its points.
    """
    width = EAN_LENGTH - 1 - len(prefix)
    if prefix and not (prefix.isascii() and prefix.isdigit()):
        # only 0-9, as check_ean: other digits (Arabic-Indic "١٢", "²") would make a
        # code that check_ean refuses (REG-1.non_digit)
        message = f"EAN prefix {prefix!r} must be the digits 0-9 only"
        raise InvalidEanError(message, [Finding(RULE_NON_DIGIT, message)])
    if not prefix or width < 1:
        raise InvalidEanError(
            f"EAN prefix {prefix!r} must be 1 to 16 digits",
            [Finding(RULE_LENGTH, f"EAN prefix {prefix!r} must be 1 to 16 digits")],
        )
    if serial < 0 or serial >= 10**width:
        raise InvalidEanError(
            f"serial {serial} does not fit in {width} digits after prefix {prefix}",
            [Finding(RULE_LENGTH, f"serial {serial} is out of range for prefix {prefix}")],
        )
    return complete_ean(f"{prefix}{serial:0{width}d}")
