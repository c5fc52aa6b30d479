"""Normalizers for each contact value; every way in (API, form, import) goes through these.

Each function takes what a person typed (or a spreadsheet cell) and returns the canonical
form, or raises :class:`InvalidValue` whose message says what is wrong and what to do.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

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

NAME_MAX = 200
ADDRESS_MAX = 500
EMAIL_MAX = 320
HANDLE_MAX = 100
TAG_MAX = 100

_CHANNEL_ALIASES = {
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
_HANDLE = re.compile(r"^[\w.\-]+$")
_WHITESPACE = re.compile(r"\s+")
_PHONE_CHARS = re.compile(r"^[\d\s+().\-]+$")
_EXCEL_FLOAT = re.compile(r"^\d+\.0+$")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_SEVERAL_PHONES = re.compile(r"\d[\s]*[/;,|][\s]*[+\d(]")
# Characters that never belong in stored text: C0/C1 controls (tab and newlines are folded
# by the callers), the BOM and zero-width space. U+200D stays: emoji sequences need it.
_STRIP = {c: None for c in range(0x20) if chr(c) not in "\t\n\r"}
_STRIP.update({0x7F: None, 0xFEFF: None, 0x200B: None})
_STRIP.update(dict.fromkeys(range(128, 160)))


class InvalidValue(ValueError):
    """A value a person can fix; ``str(exc)`` is the message shown to them."""


def clean_text(value: object) -> str:
    """Text with control characters removed and the ends trimmed; NFC-composed."""
    text = value if isinstance(value, str) else str(value)
    return unicodedata.normalize("NFC", text.translate(_STRIP)).strip()


def normalize_name(value: object) -> str:
    name = _WHITESPACE.sub(" ", clean_text(value or ""))
    if not name:
        raise InvalidValue("Name is required: write the contact's name.")
    if len(name) > NAME_MAX:
        raise InvalidValue(f"Name is {len(name)} characters long; shorten it to {NAME_MAX}.")
    return name


def normalize_email(value: object) -> tuple[str, str] | None:
    """``(normalized, comparison key)``, or None when empty. No DNS look-up is made."""
    text = clean_text(value or "")
    if not text:
        return None
    if len(text) > EMAIL_MAX:
        raise InvalidValue(f"Email is longer than {EMAIL_MAX} characters; check the cell.")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue(
            f"'{text}' is not a valid email address: {exc} "
            "Write one address, like budi@example.com."
        ) from None
    normalized: str = result.normalized
    return normalized, normalized.lower()


@lru_cache(maxsize=64)
def country_code(region: str) -> str:
    code = phonenumbers.country_code_for_region(region)
    if not code:
        raise InvalidValue(f"'{region}' is not a known region code; use one like ID or SG.")
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
        raise InvalidValue(f"'{text}' holds more than one phone number; keep one per contact.")
    if not _PHONE_CHARS.match(text):
        raise InvalidValue(
            f"'{text}' is not a phone number: use digits, spaces, +, -, ( and ) only, "
            "like 0812-3456-7890 or +62 812 3456 7890."
        )
    digits = re.sub(r"\D", "", text)
    country = country_code(region)
    if not text.startswith(("+", "0", "(")) and digits.startswith(country):
        international = _parse(f"+{digits}", region)
        if international is not None and phonenumbers.is_valid_number(international):
            return _e164(international)
    number = _parse(text, region)
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidValue(
            f"'{text}' is not a valid phone number for region {region}: check the digits, "
            "or write it with its country code, like +62 812 3456 7890."
        )
    return _e164(number)


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _excel_scientific(text: str) -> InvalidValue:
    return InvalidValue(
        f"'{text}' is a phone number that Excel turned into a number in scientific notation, "
        "and its last digits are lost. Format the phone column as Text, type the numbers "
        "again, and upload the file again."
    )


def normalize_channel(value: object) -> str | None:
    text = clean_text(value or "").lower()
    if not text:
        return None
    key = re.sub(r"[\s_\-.]", "", text)
    channel = _CHANNEL_ALIASES.get(key, key)
    if channel not in CHANNELS:
        raise InvalidValue(f"'{text}' is not a channel; use one of: {', '.join(CHANNELS)}.")
    return channel


def normalize_address(value: object) -> str | None:
    text = clean_text(value or "").replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if not text:
        return None
    if len(text) > ADDRESS_MAX:
        raise InvalidValue(f"Address is {len(text)} characters long; shorten it to {ADDRESS_MAX}.")
    return text


def normalize_platform(value: object) -> str:
    text = clean_text(value or "").lower()
    platform = {"x": "twitter", "fb": "facebook", "ig": "instagram"}.get(text, text)
    if platform not in PLATFORMS:
        raise InvalidValue(
            f"'{text}' is not a social platform; use one of: {', '.join(PLATFORMS)}."
        )
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
        raise InvalidValue(
            f"'{text}' is not a {platform} handle: write the handle (like @budi.santoso) "
            "or the profile link."
        )
    if len(handle) > HANDLE_MAX:
        raise InvalidValue(f"The {platform} handle is longer than {HANDLE_MAX} characters.")
    return handle


def _handle_from_url(platform: str, text: str) -> str:
    url = urlsplit(text if "://" in text else f"https://{text}")
    host = (url.hostname or "").lower()
    for prefix in _HOST_PREFIXES:
        host = host.removeprefix(prefix)
    link_platform = _HOSTS.get(host)
    if link_platform != platform:
        what = f"a {link_platform} link" if link_platform else "not a link to a known profile"
        raise InvalidValue(
            f"'{text}' is {what}; give the {platform} handle or the {platform} profile link."
        )
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
        raise InvalidValue(f"Tag '{text}' contains a comma; commas separate tags.")
    if len(text) > TAG_MAX:
        raise InvalidValue(f"Tag '{text[:20]}…' is longer than {TAG_MAX} characters.")
    return text


def split_tags(value: object) -> list[str]:
    """A spreadsheet cell of comma-separated tags, normalized and without repeats."""
    tags: list[str] = []
    for part in clean_text(value or "").split(","):
        tag = normalize_tag(part)
        if tag and tag not in tags:
            tags.append(tag)
    return tags
