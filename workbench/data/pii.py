"""PII masking: e-mail addresses, card numbers, IP addresses and phone numbers become placeholders.

Patterns find candidates; each kind then has a check that keeps look-alikes (dates, year ranges, version
numbers, numbers that fail the Luhn check) as they are. Names are not masked: that needs a named-entity
model, and none ships offline with this project.
"""
from __future__ import annotations

import ipaddress
import re
from collections import Counter

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# 13-19 digits, optionally grouped by single spaces or dashes (card-like); confirmed by the Luhn check.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# +CC, (area) or digit groups separated by space, dot or dash; checked by _is_phone.
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w-])")
DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
PLACEHOLDERS = {"email": "[EMAIL]", "card": "[CARD]", "ip": "[IP]", "phone": "[PHONE]"}


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and _luhn(digits) and len(set(digits)) > 1


def _is_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.version == 4 or text.count(":") >= 2


def _is_phone(text: str) -> bool:
    """7-15 digits in a phone-like layout: a +country code, an (area) code, or three or more groups.
    Two plain groups ("1990-2000", "12 345") and dates ("2023-10-12", "12.10.2023") are not phones."""
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or DATE_LIKE.match(text):
        return False
    groups = len(re.findall(r"\d+", text))
    return text.startswith("+") or "(" in text or groups >= 3


def mask_pii(text: str) -> tuple[str, Counter]:
    """The text with e-mails, card numbers, IP addresses and phone numbers replaced by placeholders,
    and how many of each were replaced. Cards go first so their digit groups are not taken as phones."""
    counts: Counter = Counter()
    if not text:
        return text, counts

    def sub(pattern, kind, check=None):
        nonlocal text

        def repl(m):
            if check is not None and not check(m.group(0)):
                return m.group(0)
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        text = pattern.sub(repl, text)

    sub(EMAIL, "email")
    sub(CARD, "card", _is_card)
    sub(IPV4, "ip", _is_ip)
    sub(IPV6, "ip", _is_ip)
    sub(PHONE, "phone", _is_phone)
    return text, counts
