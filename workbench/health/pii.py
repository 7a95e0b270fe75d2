"""Personal data in free text: find it, and replace it before anything is stored.

Detectors, each chosen for precision on ordinary prose:

- emails and URLs: regular expressions (RFC 5322's common subset; http(s)/www URLs);
- phone numbers: Google's libphonenumber (``phonenumbers``), possible numbers only, which
  rejects dates, times and short codes that merely look like numbers;
- payment cards: 13-19 digit runs passing the Luhn check (``stdnum.luhn``) with a known prefix;
- IBANs: country code, check digits and BBAN checked by ``stdnum.iban`` (mod-97);
- IP addresses: the standard library's ``ipaddress`` on dotted quads and IPv6-looking tokens;
- person names: no NER model can be loaded offline here, so a capitalised first name from
  gender-guesser's list of 40,000 given names followed by a capitalised word, or a title (Mr,
  Mrs, Ms, Dr, Prof) and a capitalised word.

``pseudonymize`` replaces each value with ``<TYPE_xxxxxx>``, where xxxxxx is an HMAC-SHA256 of the
value under the project's secret: the same value maps to the same token everywhere, and the
secret never leaves the database. ``mask`` replaces it with ``<TYPE>``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class PiiMode(StrEnum):
    OFF = "off"
    FLAG = "flag"
    PSEUDONYMIZE = "pseudonymize"
    MASK = "mask"


class PiiType(StrEnum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CARD = "CARD"
    IBAN = "IBAN"
    IP = "IP"
    URL = "URL"
    PERSON = "PERSON"


@dataclass(frozen=True)
class PiiFinding:
    type: PiiType
    start: int
    end: int
    value: str


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![:\w])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![:\w])")
_CAPITALISED = re.compile(r"\b([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\s+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b")
_TITLED = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b")
_DIGIT = re.compile(r"\d")
_TITLES = ("Mr", "Ms", "Miss", "Dr", "Prof")
_PHONE_HINT = re.compile(r"\d[\d ()./-]{5,}\d")
# Card brands' leading digits (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]|2)|35|3(?:0[0-5]|[68])|5[06-9])")
# Capitalised words that are common first names but, beside another capital, rarely a person.
_NOT_NAMES = frozenset(
    "The A An And But Or If In On At To Of For By With From Not No Yes Happy Good New Dear Hi Hello "
    "Thanks Thank Please Merry Christmas Easter Monday Tuesday Wednesday Thursday Friday Saturday "
    "Sunday January February March April May June July August September October November December "
    "Call Text Txt Reply Free Win Will Can Rose Hope Joy Grace Faith Love Summer Winter Spring "
    "Bill Mark Art Sky Star King Queen Prince Angel Baby Honey Sunny Holly Ivy Daisy".split()
)


@lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    """Given names from gender-guesser's dictionary (the package ships the file)."""
    from pathlib import Path

    import gender_guesser

    names = set()
    path = Path(gender_guesser.__file__).parent / "data" / "nam_dict.txt"
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or len(line) < 30:
                continue
            name = line[3:29].strip()
            if name.isalpha() and name[:1].isupper() and len(name) >= 3:
                names.add(name)
    return frozenset(names - _NOT_NAMES)


def _luhn_card(digits: str) -> bool:
    from stdnum import luhn

    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn.is_valid(digits)


def _valid_iban(value: str) -> bool:
    from stdnum import iban

    return iban.is_valid(value)


def _valid_ip(value: str) -> bool:
    if ":" in value and sum(1 for group in value.split(":") if group) < 3:
        return False  # "::", "a::b": valid addresses in theory, never personal data in prose
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def find_pii(text: str, *, region: str = "US") -> list[PiiFinding]:
    """Every personal value in the text, left to right, without overlaps (the first found wins,
    in the order email, URL, IBAN, card, IP, phone, person)."""
    found: list[PiiFinding] = []
    taken: list[tuple[int, int]] = []

    def add(kind: PiiType, start: int, end: int) -> None:
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        found.append(PiiFinding(kind, start, end, text[start:end]))

    # Cheap substring tests first: most texts have no '@', no digit, no title.
    if "@" in text:
        for m in _EMAIL.finditer(text):
            add(PiiType.EMAIL, m.start(), m.end())
    if "://" in text or "www." in text.lower():
        for m in _URL.finditer(text):
            add(PiiType.URL, m.start(), m.end())
    if _DIGIT.search(text):
        for m in _IBAN.finditer(text):
            if _valid_iban(m.group()):
                add(PiiType.IBAN, m.start(), m.end())
        for m in _CARD.finditer(text):
            if _luhn_card(re.sub(r"[ -]", "", m.group())):
                add(PiiType.CARD, m.start(), m.end())
        for pattern in (_IPV4, _IPV6) if ":" in text else (_IPV4,):
            for m in pattern.finditer(text):
                if _valid_ip(m.group()):
                    add(PiiType.IP, m.start(), m.end())
        if _PHONE_HINT.search(text):
            import phonenumbers

            for phone in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
                add(PiiType.PHONE, phone.start, phone.end)
    names = _first_names()
    for m in _CAPITALISED.finditer(text):
        first, last = m.group(1), m.group(2)
        if first in names and last not in _NOT_NAMES:
            add(PiiType.PERSON, m.start(), m.end())
    if any(title in text for title in _TITLES):
        for m in _TITLED.finditer(text):
            if m.group(1) not in _NOT_NAMES:
                add(PiiType.PERSON, m.start(), m.end())
    return sorted(found, key=lambda f: f.start)


def pseudonym(kind: PiiType, value: str, secret: bytes) -> str:
    """A stable token for one value: ``<EMAIL_3f2a9c>``, keyed by an HMAC under the secret."""
    digest = hmac.new(secret, f"{kind.value}:{value}".encode(), hashlib.sha256).hexdigest()[:6]
    return f"<{kind.value}_{digest}>"


@dataclass(frozen=True)
class Scrubbed:
    text: str
    findings: tuple[PiiFinding, ...]


def scrub(text: str, mode: PiiMode, *, secret: bytes = b"", region: str = "US") -> Scrubbed:
    """The text with every finding replaced as the mode says (``flag`` and ``off`` keep it)."""
    if mode == PiiMode.OFF:
        return Scrubbed(text, ())
    findings = find_pii(text, region=region)
    if mode == PiiMode.FLAG or not findings:
        return Scrubbed(text, tuple(findings))
    parts, last = [], 0
    for f in findings:
        parts.append(text[last : f.start])
        parts.append(pseudonym(f.type, f.value, secret) if mode == PiiMode.PSEUDONYMIZE else f"<{f.type.value}>")
        last = f.end
    parts.append(text[last:])
    return Scrubbed("".join(parts), tuple(findings))


def count_by_type(findings: list[PiiFinding] | tuple[PiiFinding, ...]) -> dict[str, int]:
    return dict(Counter(f.type.value for f in findings))


SECRET_ENV = "WORKBENCH_PII_SECRET"


def project_secret(home: Path, project_id: int) -> bytes:
    """The key pseudonyms of one project are made with: an HMAC of the project id under the
    master secret, which is $WORKBENCH_PII_SECRET when set, else a random key kept in
    $WORKBENCH_HOME/secrets/pii.key (mode 0600, made on first use). It is never stored in the
    database, so a copy of the database alone cannot map pseudonyms back to values by guessing."""
    import os
    import secrets as random_secrets
    from pathlib import Path

    master = os.environ.get(SECRET_ENV, "").encode()
    if not master:
        path = Path(home) / "secrets" / "pii.key"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            master = path.read_bytes().strip()
        else:
            master = random_secrets.token_hex(32).encode()
            with os.fdopen(fd, "wb") as f:
                f.write(master)
    return hmac.new(master, f"project:{project_id}".encode(), hashlib.sha256).digest()


def pii_mode(settings: dict, kind: str) -> PiiMode:
    """The project's personal-data mode: its `pii` setting, else `flag` for text and `off` otherwise."""
    value = settings.get("pii")
    if value in (None, ""):
        return PiiMode.FLAG if kind == "text" else PiiMode.OFF
    return PiiMode(value)
