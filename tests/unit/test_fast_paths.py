"""Differential tests: the fast paths of phone and email normalization give exactly the
libraries' answers (libphonenumber, email-validator) over large generated corpora, and do
take the common shapes (else they would be no faster)."""

from __future__ import annotations

import itertools
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import phonenumbers
import pytest
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kontak.contact import normalize
from kontak.contact.normalize import (
    _PHONE_CHARS,
    InvalidValue,
    _plain_domain,
    _plain_local_part,
    email_fast,
    phone_fast,
    phone_slow,
)

REALWORLD = Path(__file__).resolve().parents[3] / "shared" / "realworld"


def slow_phone(text: str, region: str) -> str | None:
    try:
        return phone_slow(text, re.sub(r"\D", "", text), region)
    except InvalidValue:
        return None


def writings(nsn: str, cc: str = "62") -> list[str]:
    local = "0" + nsn
    return [
        local,
        nsn,
        cc + nsn,
        "+" + cc + nsn,
        f"+{cc} {nsn[:3]} {nsn[3:7]} {nsn[7:]}",
        f"{local[:4]}-{local[4:8]}-{local[8:]}",
        f"{local[:4]} {local[4:8]} {local[8:]}",
        f"{local[:4]}.{local[4:8]}.{local[8:]}",
        f"({local[:4]}) {local[4:]}",
        f"+{cc} (0){nsn}",
        f"00{cc}{nsn}",
        f"{cc} {nsn}",
        f"(+{cc}) {nsn}",
        f"({cc}) {nsn}",
        f"+{cc}0{nsn}",
        f"0{cc}{nsn}",
    ]


def phone_corpus(seed: int = 62) -> list[str]:
    rng = random.Random(seed)
    corpus: list[str] = []
    for first in "0123456789":
        for second in "0123456789":
            for length in range(5, 15):
                rest = "".join(rng.choice("0123456789") for _ in range(length - 2))
                nsn = first + second + rest
                corpus += writings(nsn)
    for _ in range(3000):
        prefix = rng.choice(
            ["81", "82", "83", "85", "87", "88", "89", "84", "80", "21", "22", "61", "62", "8"]
        )
        nsn = prefix + "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 12)))
        corpus += rng.sample(writings(nsn), 4)
    corpus += [
        "+1 202 555 0143",
        "+65 9123 4567",
        "0062812345678",
        "62",
        "+62",
        "0",
        "08",
        "+6208123456789",
    ]
    return [c for c in corpus if _PHONE_CHARS.match(c)]


def test_phone_fast_path_agrees_with_libphonenumber() -> None:
    corpus = phone_corpus()
    assert len(corpus) > 25_000
    taken = 0
    for text in corpus:
        fast = phone_fast(text, re.sub(r"\D", "", text), "ID")
        if fast is None:
            continue
        taken += 1
        assert fast == slow_phone(text, "ID"), text
    assert taken > 2_000  # the common writings do take the fast path


@pytest.mark.parametrize("region", ["SG", "MY", "US", "GB", "JP"])
def test_phone_fast_path_agrees_in_other_regions(region: str) -> None:
    rng = random.Random(region)
    taken = 0
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 13)))
        cc = str(phonenumbers.country_code_for_region(region))
        for text in (
            digits,
            "+" + digits,
            "0" + digits,
            f"({digits[:3]}) {digits[3:]}",
            f"+{cc} (0){digits}",
            f"+{cc}0{digits}",
        ):
            fast = phone_fast(text, re.sub(r"\D", "", text), region)
            if fast is not None:
                taken += 1
                assert fast == slow_phone(text, region), (region, text)
    assert taken > 0


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"\A[+(]?[0-9][0-9 ().\-]{4,18}\Z"))
def test_property_phone_fast_path_never_disagrees(text: str) -> None:
    fast = phone_fast(text, re.sub(r"\D", "", text), "ID")
    if fast is not None:
        assert fast == slow_phone(text, "ID")


def slow_email(text: str) -> str | None:
    try:
        return str(validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def email_corpus(seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    atoms = [
        "budi",
        "Siti",
        "a",
        "x_y",
        "a+tag",
        "-lead",
        "trail-",
        "9",
        "ÄNDI",
        "o'neil",
        "a..b",
        ".dot",
        "dot.",
        "a b",
        'q"uote',
    ]
    labels = [
        "contoh",
        "Example",
        "co",
        "id",
        "a-b",
        "-bad",
        "bad-",
        "xn--p1ai",
        "ab--cd",
        "123",
        "a" * 63,
        "a" * 64,
        "localhost",
        "test",
        "local",
        "invalid",
        "onion",
        "arpa",
        "example",
        "museum",
        "COM",
        "co1",
        "1co",
    ]
    corpus = []
    for _ in range(20_000):
        local = ".".join(rng.choice(atoms) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.05:
            local = "a" * rng.randint(60, 70)
        domain = ".".join(rng.choice(labels) for _ in range(rng.randint(1, 4)))
        corpus.append(f"{local}@{domain}")
    corpus += [
        "@contoh.id",
        "budi@",
        "budi@@contoh.id",
        "budi@contoh..id",
        "budi@.contoh.id",
        "Budi@Contoh.CO.ID",
    ]
    tests = ET.parse(REALWORLD / "dominicsayers__isemail__tests.xml").getroot()
    for test in tests.iter("test"):
        address = test.findtext("address") or ""
        corpus.append(
            "".join(chr(ord(c) - 0x2400) if 0x2400 <= ord(c) <= 0x241F else c for c in address)
        )
    return corpus


def test_email_fast_path_agrees_with_email_validator() -> None:
    taken = 0
    for text in email_corpus():
        fast = email_fast(text)
        if fast is None:
            continue
        taken += 1
        assert fast == slow_email(text), text
    assert taken > 800


@settings(max_examples=500, deadline=None)
@given(st.emails())
def test_property_email_fast_path_never_disagrees(text: str) -> None:
    fast = email_fast(text)
    if fast is not None:
        assert fast == slow_email(text)


def test_email_fast_path_gives_the_same_answers_from_its_remembered_domains() -> None:
    """Each domain is checked once and remembered: a second pass over the corpus (every
    domain now remembered, invalid ones as None) answers exactly as the first did and as
    email-validator does, and the memory stops growing at its bound."""
    normalize._domains.clear()
    try:
        corpus = email_corpus()
        first = [email_fast(text) for text in corpus]
        assert normalize._domains, "the corpus' domains were remembered"
        assert None in normalize._domains.values(), "and the invalid ones too"
        assert [email_fast(text) for text in corpus] == first
        # The same domain written in other cases is its own entry, lower-cased alike.
        assert email_fast("budi@Contoh.CO.id") == "budi@contoh.co.id"
        assert email_fast("siti@CONTOH.co.ID") == "siti@contoh.co.id"
        assert email_fast("budi@contoh.test") is None  # special-use, remembered as such
        assert email_fast("siti@contoh.test") is None
        for i in range(normalize.DOMAINS_REMEMBERED + 500):
            assert email_fast(f"a@d{i}.example.co.id") == f"a@d{i}.example.co.id"
        assert len(normalize._domains) == normalize.DOMAINS_REMEMBERED
        assert email_fast("a@D5000.example.co.id") == "a@d5000.example.co.id"  # unremembered
        assert email_fast("a@-bad.co.id") is None
    finally:
        normalize._domains.clear()


def test_realistic_values_take_the_fast_paths() -> None:
    from benchmarks.generate import rows

    sample = rows(2000)
    emails = sum(email_fast(r[1]) is not None for r in sample)
    phones = sum(phone_fast(r[2], re.sub(r"\D", "", r[2]), "ID") is not None for r in sample)
    assert emails == len(sample)
    assert phones > 0.95 * len(sample)


# The shape of the addresses email_fast takes, as the regex that used to check it.
OLD_FAST_EMAIL = re.compile(
    r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def _email_shape(text: str) -> bool:
    local, at, domain = text.partition("@")
    return bool(at) and _plain_local_part(local) and _plain_domain(domain)


# One character of each kind the shape tells apart: a letter, a digit, the hyphen, the
# dot, the other marks of a local part (``_`` as ``+``), the at sign, a letter beyond ASCII.
SHAPE_KINDS = "a0-._@é"


def test_email_shape_is_the_regex_shape_for_every_short_text() -> None:
    """Every text of up to 7 characters of those kinds (960,800 of them; the shortest
    address the shape takes, ``a@a.aa``, has 6, and ``a@a-.aa`` 7): each edge of the
    shape in every place it can come, which random examples find only by chance."""
    for length in range(8):
        for chars in itertools.product(SHAPE_KINDS, repeat=length):
            text = "".join(chars)
            assert _email_shape(text) == bool(OLD_FAST_EMAIL.fullmatch(text)), text


# Longer texts and other characters (the short ones are all tried above).
@settings(max_examples=600)
@given(
    st.from_regex(OLD_FAST_EMAIL, fullmatch=True)
    | st.text(alphabet="aZ09_+-.@é", max_size=30)
    | st.text(max_size=30)
)
@example("a@b.co")
@example("a@b.c")
@example(".a@b.co")
@example("a.@b.co")
@example("a..b@b.co")
@example("_@b.co")
@example("a@-b.co")
@example("a@b-.co")
@example("a@b..co")
@example("a@b.co.")
@example("a@b@c.co")
@example("a@b.c0")
@example("a@" + "b" * 64 + ".co")
@example("a@" + "b" * 63 + ".co")
@example("a@b." + "c" * 64)
@example("ä@b.co")
@example("a@bä.co")
def test_email_shape_is_the_regex_shape(text: str) -> None:
    assert _email_shape(text) == bool(OLD_FAST_EMAIL.fullmatch(text)), text


@pytest.mark.parametrize("top_only", [True, False])
def test_special_use_domains_are_found_by_any_suffix(
    top_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(normalize, "_SPECIAL_USE_TOP_ONLY", top_only)
    for domain in (
        "test",
        "a.test",
        "mail.a.local",
        "localhost",
        "gmail.com",
        "testing.co.id",
        "a.onion",
        "onion.com",
        "x.invalid",
        "arpa.id",
        "in-addr.arpa",
    ):
        labels = domain.split(".")
        suffixes = {".".join(labels[i:]) for i in range(len(labels))}
        expected = bool(suffixes & set(SPECIAL_USE_DOMAIN_NAMES))
        assert normalize._special_use(domain) == expected, domain
