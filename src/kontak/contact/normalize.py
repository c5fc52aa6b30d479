"""Normalizers for each contact value; every way in (API, form, import) goes through these.

Each function takes what a person typed (or a spreadsheet cell) and returns the canonical
form, or raises :class:`InvalidValue` whose message says what is wrong and what to do.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final
from urllib.parse import parse_qs, urlsplit

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import PhoneMetadata

from kontak.messages import Text

CHANNELS = (
    "whatsapp",
    "email",
    "livechat",
    "facebook",
    "instagram",
    "telegram",
    "twitter",
    "phone",
    "sms",
)
PLATFORMS = ("facebook", "instagram", "twitter", "tiktok", "linkedin", "telegram", "youtube")

# Final: the compiled parser (kontak.native) reads Final names without a dict look-up.
NAME_MAX: Final = 200
ADDRESS_MAX: Final = 500
EMAIL_MAX: Final = 320
HANDLE_MAX: Final = 100
TAG_MAX: Final = 100

CHANNEL_ALIASES = {
    "wa": "whatsapp",
    "mail": "email",
    "surel": "email",
    "webchat": "livechat",
    "chat": "livechat",
    "fb": "facebook",
    "ig": "instagram",
    "tg": "telegram",
    "x": "twitter",
    "telepon": "phone",
    "call": "phone",
    "tel": "phone",
}
_HOSTS = {
    "facebook.com": "facebook",
    "fb.com": "facebook",
    "instagram.com": "instagram",
    "instagr.am": "instagram",
    "twitter.com": "twitter",
    "x.com": "twitter",
    "tiktok.com": "tiktok",
    "linkedin.com": "linkedin",
    "t.me": "telegram",
    "telegram.me": "telegram",
    "youtube.com": "youtube",
}
_HOST_PREFIXES = ("www.", "m.", "mobile.", "id.", "web.")
_HANDLE: Final = re.compile(r"^[\w.\-]+$")
_WHITESPACE = re.compile(r"\s+")
_PHONE_CHARS = re.compile(r"^[\d\s+().\-]+$")
_NON_DIGITS = re.compile(r"\D")
_EXCEL_FLOAT = re.compile(r"^\d+\.0+$")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_SEVERAL_PHONES = re.compile(r"\d[\s]*[/;,|][\s]*[+\d(]")
# Characters that never belong in stored text: C0/C1 controls (tab and newlines are folded
# by the callers), the BOM and zero-width space. U+200D stays: emoji sequences need it.
_STRIP = {c: None for c in range(0x20) if chr(c) not in "\t\n\r"}
_STRIP.update({0x7F: None, 0xFEFF: None, 0x200B: None})
_STRIP.update(dict.fromkeys(range(128, 160)))


class InvalidValue(ValueError):
    """A value a person can fix; ``exc.text`` (``str(exc)`` in English) says what to do."""

    def __init__(self, key: str, /, **params: object) -> None:
        self.text = Text(key, **params)
        super().__init__(self.text)


def clean_text(value: object) -> str:
    """Text with control characters removed and the ends trimmed; NFC-composed."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text.strip()  # the common case: nothing to remove, nothing to compose
    return unicodedata.normalize("NFC", text.translate(_STRIP)).strip()


def collapse_spaces(text: str) -> str:
    """Every run of white space as one space."""
    return _WHITESPACE.sub(" ", text)


def normalize_name(value: object) -> str:
    name = _WHITESPACE.sub(" ", clean_text(value or ""))
    if not name:
        raise InvalidValue("name.required")
    if len(name) > NAME_MAX:
        raise InvalidValue("name.too_long", length=len(name), max=NAME_MAX)
    return name


def normalize_email(value: object) -> tuple[str, str] | None:
    """``(normalized, comparison key)``, or None when empty. No DNS look-up is made."""
    text = clean_text(value or "")
    if not text:
        return None
    if len(text) > EMAIL_MAX:
        raise InvalidValue("email.too_long", max=EMAIL_MAX)
    fast = email_fast(text)
    if fast is not None:
        return fast, fast.lower()
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue("email.invalid", value=text, reason=str(exc)) from None
    normalized: str = result.normalized
    return normalized, normalized.lower()


def email_fast(text: str) -> str | None:
    """email-validator's normalized form for plain ASCII addresses, or None to ask it.

    Only a conservative shape is handled here (ASCII atoms, letter TLD, no IDNA or
    special-use domains); ``tests/unit/test_fast_paths.py`` proves over a large corpus that
    whatever this returns is exactly what email-validator returns.
    """
    if len(text) > 100:
        return None
    local, at, domain = text.partition("@")
    if not at or len(local) > 64 or not _plain_local_part(local):
        return None
    lowered = _domains.get(domain, _UNSEEN)
    if lowered is _UNSEEN:
        lowered = _fast_domain(domain)
        if len(_domains) < DOMAINS_REMEMBERED:
            _domains[domain] = lowered
    if lowered is None:
        return None
    return f"{local}@{lowered}"


# An address's domain as written -> its lower-cased form when email_fast takes it, else
# None. A file's addresses are unique but their domains are few (a generated 1M-row file
# has 97, a real list a handful of providers): checking each domain once saved ~1 µs of
# the ~10 µs that checking a plain row takes. Bounded: a file of unique domains stops
# adding to it and checks the rest each time.
DOMAINS_REMEMBERED: Final = 4096
_domains: Final[dict[str, str | None]] = {}
_UNSEEN: Final = "\0unseen"


def _fast_domain(domain: str) -> str | None:
    """``domain`` lower-cased, when email_fast takes it (see its docstring), else None."""
    if not _plain_domain(domain):
        return None
    lowered = domain.lower()
    if "--" in lowered or _special_use(lowered):
        return None
    return lowered


# The shape email_fast takes, checked with string methods: the regex that did it (kept in
# ``tests/unit/test_fast_paths.py``, which holds the two equal) was ~7,000 CPU
# instructions an address, ~10% of checking a row of a big file.
def _plain_local_part(local: str) -> bool:
    """ASCII letters, digits, ``_+-`` in dot-separated atoms (none empty)."""
    if not local or local[0] == "." or local[-1] == "." or ".." in local:
        return False
    rest = local.replace(".", "").replace("_", "").replace("+", "").replace("-", "")
    return not rest or (rest.isascii() and rest.isalnum())


def _plain_domain(domain: str) -> bool:
    """Labels of ASCII letters, digits and inner hyphens (1-63 characters), then a top
    level label of 2-63 ASCII letters."""
    labels = domain.split(".")
    top = labels.pop()
    if not labels or not 2 <= len(top) <= 63 or not (top.isascii() and top.isalpha()):
        return False
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        bare = label.replace("-", "")
        if not (bare.isascii() and bare.isalnum()):
            return False
    return True


_SPECIAL_USE: Final = frozenset(SPECIAL_USE_DOMAIN_NAMES)
# email-validator's names are top-level labels only (``test``, ``local``…): then only an
# address's last label can make it special-use.
_SPECIAL_USE_TOP_ONLY: Final = all("." not in name for name in _SPECIAL_USE)


def _special_use(domain: str) -> bool:
    """Whether ``domain`` is, or is under, a special-use name (``test``, ``local``…)."""
    if _SPECIAL_USE_TOP_ONLY:
        return domain[domain.rfind(".") + 1 :] in _SPECIAL_USE
    if domain in _SPECIAL_USE:
        return True
    dot = domain.find(".")
    while dot >= 0:
        if domain[dot + 1 :] in _SPECIAL_USE:
            return True
        dot = domain.find(".", dot + 1)
    return False


def phone_fast(text: str, digits: str, region: str) -> str | None:
    """E.164 of a mobile number of ``region`` in its usual writings, or None to ask
    libphonenumber. Uses the library's own metadata patterns; the differential test in
    ``tests/unit/test_fast_paths.py`` proves it agrees with the slow path."""
    rules = _phone_rules.get(region)
    if rules is None:
        if region in _phone_rules:
            return None
        rules = _phone_rules[region] = _fast_phone_rules(region)
        if rules is None:
            return None
    country, national_prefix, mobile, general = rules
    if text.startswith("+"):
        if not digits.startswith(country):
            return None
        nsn = digits[len(country) :]
        if national_prefix and nsn.startswith(national_prefix):
            # "+62 (0)812…": libphonenumber drops a national prefix written after the
            # country code, unless only the number with it fits the region's pattern.
            stripped = nsn[len(national_prefix) :]
            if general.fullmatch(stripped) or not general.fullmatch(nsn):
                nsn = stripped
    elif national_prefix and digits.startswith(national_prefix):
        nsn = digits[len(national_prefix) :]
    elif not text.startswith("(") and digits.startswith(country):
        nsn = digits[len(country) :]
    else:
        nsn = digits
    if mobile.fullmatch(nsn):
        return f"+{country}{nsn}"
    return None


# (country code, national prefix, mobile pattern, general pattern) by region, or None
# for a region phone_fast leaves to libphonenumber. The mobile pattern holds the general
# one as a look-ahead: a number must fit both, and one match costs ~0.4 µs less than two.
PhoneRules = tuple[str, str, re.Pattern[str], re.Pattern[str]]
_phone_rules: Final[dict[str, PhoneRules | None]] = {}


def _fast_phone_rules(region: str) -> PhoneRules | None:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.mobile is None or metadata.general_desc is None:
        return None
    mobile = metadata.mobile.national_number_pattern
    general = metadata.general_desc.national_number_pattern
    if not mobile or not general:
        return None
    prefix = metadata.national_prefix or ""
    both = re.compile(f"(?=(?:{general})\\Z)(?:{mobile})")
    return country_code(region), prefix, both, re.compile(general)


@lru_cache(maxsize=64)
def country_code(region: str) -> str:
    code = phonenumbers.country_code_for_region(region)
    if not code:
        raise InvalidValue("region.unknown", region=region)
    return str(code)


def normalize_phone(value: object, region: str = "ID") -> str | None:
    """E.164 (``+6281234567890``), or None when empty.

    Numbers are read in ``region`` (``0812…`` is national); digits starting with the
    region's country code and no ``+`` (``62812…``) are read as international.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer() or value >= 1e15:
            raise _excel_scientific(repr(value))
        value = int(value)
    text = _WHITESPACE.sub(" ", clean_text(value))
    if not text:
        return None
    if _SCIENTIFIC.match(text):
        raise _excel_scientific(text)
    if _EXCEL_FLOAT.match(text):
        text = text.split(".", 1)[0]
    if _SEVERAL_PHONES.search(text):
        raise InvalidValue("phone.several", value=text)
    if not _PHONE_CHARS.match(text):
        raise InvalidValue("phone.characters", value=text)
    digits = _NON_DIGITS.sub("", text)
    fast = phone_fast(text, digits, region)
    if fast is not None:
        return fast
    return phone_slow(text, digits, region)


def phone_slow(text: str, digits: str, region: str) -> str:
    """The number as libphonenumber reads it (``62…`` first as international)."""
    country = country_code(region)
    if not text.startswith(("+", "0", "(")) and digits.startswith(country):
        international = _parse(f"+{digits}", region)
        if international is not None and phonenumbers.is_valid_number(international):
            return _e164(international)
    number = _parse(text, region)
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidValue("phone.invalid", value=text, region=region)
    return _e164(number)


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _excel_scientific(text: str) -> InvalidValue:
    return InvalidValue("phone.scientific", value=text)


def normalize_channel(value: object) -> str | None:
    text = clean_text(value or "").lower()
    if not text:
        return None
    key = re.sub(r"[\s_\-.]", "", text)
    channel = CHANNEL_ALIASES.get(key, key)
    if channel not in CHANNELS:
        raise InvalidValue("channel.invalid", value=text, choices=", ".join(CHANNELS))
    return channel


def normalize_address(value: object) -> str | None:
    text = clean_text(value or "").replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if not text:
        return None
    if len(text) > ADDRESS_MAX:
        raise InvalidValue("address.too_long", length=len(text), max=ADDRESS_MAX)
    return text


def normalize_platform(value: object) -> str:
    text = clean_text(value or "").lower()
    platform = {"x": "twitter", "fb": "facebook", "ig": "instagram"}.get(text, text)
    if platform not in PLATFORMS:
        raise InvalidValue("platform.invalid", value=text, choices=", ".join(PLATFORMS))
    return platform


def normalize_handle(platform: str, value: object) -> str | None:
    """The bare handle (no ``@``); a profile URL is reduced to its handle."""
    text = clean_text(value or "")
    if not text:
        return None
    if "/" in text or text.lower().startswith(("http:", "https:", "www.")):
        text = _handle_from_url(platform, text)
    handle = text.lstrip("@")
    if not handle or not _HANDLE.match(handle):
        raise InvalidValue("handle.invalid", value=text, platform=platform)
    if len(handle) > HANDLE_MAX:
        raise InvalidValue("handle.too_long", platform=platform, max=HANDLE_MAX)
    return handle


def _handle_from_url(platform: str, text: str) -> str:
    url = urlsplit(text if "://" in text else f"https://{text}")
    host = (url.hostname or "").lower()
    for prefix in _HOST_PREFIXES:
        host = host.removeprefix(prefix)
    link_platform = _HOSTS.get(host)
    if link_platform != platform:
        if link_platform:
            raise InvalidValue(
                "handle.other_link", value=text, other=link_platform, platform=platform
            )
        raise InvalidValue("handle.unknown_link", value=text, platform=platform)
    parts = [p for p in url.path.split("/") if p]
    if platform == "facebook" and parts[:1] == ["profile.php"]:
        return parse_qs(url.query).get("id", [""])[0]
    if platform == "linkedin" and len(parts) >= 2 and parts[0] in ("in", "company", "school"):
        return parts[1]
    if platform == "youtube" and len(parts) >= 2 and parts[0] in ("c", "user", "channel"):
        return parts[1]
    return parts[0] if parts else ""


def normalize_tag(value: object) -> str | None:
    """Tag names are trimmed, inner white space collapsed and lower-cased."""
    text = _WHITESPACE.sub(" ", clean_text(value or "")).lower()
    if not text:
        return None
    if "," in text:
        raise InvalidValue("tag.comma", value=text)
    if len(text) > TAG_MAX:
        raise InvalidValue("tag.too_long", value=text[:20], max=TAG_MAX)
    return text


def split_tags(value: object) -> list[str]:
    """A spreadsheet cell of comma-separated tags, normalized and without repeats."""
    tags: list[str] = []
    for part in clean_text(value or "").split(","):
        tag = normalize_tag(part)
        if tag and tag not in tags:
            tags.append(tag)
    return tags
