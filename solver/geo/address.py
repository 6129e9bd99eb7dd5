"""Address text: normalisation, parsing and matching keys.

Chinese postal addresses are written from the largest unit to the smallest::

    中国 上海市 黄浦区 南京东路街道 西藏中路 100弄 5号 3楼 601室
    country city   district subdistrict street lane house floor room

:func:`parse_address` peels off the administrative prefixes (kept in
:attr:`ParsedAddress.admin` for the district fallback), splits an
intersection (「A路与B路交叉口」, ``"A & B"``, ``"A and B"``) into its two
streets, and reads the street-level number designation (号/弄/栋/幢/座);
floor and room details (楼/层/室) are dropped. Full-width digits and
letters become half-width first (:func:`normalize_text`).

Western addresses (``"7 Avenue Princesse Grace"``, ``"Avenue Princesse Grace
7, Monaco"``) pass through the same parser unchanged; the gazetteer finds the
street inside the text and reads the house number next to it with
:func:`western_house_number`.

:func:`match_key` turns any name or text into the form names are compared
in: case-folded, without spaces or punctuation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "ParsedAddress",
    "housenumber_key",
    "match_key",
    "normalize_text",
    "parse_address",
    "significant_key",
    "western_house_number",
]

_DIRECTIONS = "东西南北中"
_ORDINALS = "一二三四五六七八九十"
#: Characters a fuzzy match may not change: directions and ordinals tell
#: different roads apart (河南中路 / 河南北路, 中山东一路 / 中山东二路).
_SIGNIFICANT = frozenset(_DIRECTIONS + _ORDINALS + "0123456789")
_COUNTRY_PREFIXES = ("中华人民共和国", "中国")
#: City names written without 市 that are stripped as a prefix.
_BARE_CITIES = ("上海",)
#: One administrative prefix: a short name ending in 省/市/区/县/... and
#: containing no street-like character.
_ADMIN_PREFIX = re.compile(r"^[^\d路街道弄巷号]{1,7}?(?:特别行政区|自治区|自治州|新区|省|市|区|县|镇|乡)")
_SUBDISTRICT_PREFIX = re.compile(r"^[^\d路弄巷号]{1,6}?街道")
#: A house-number component: ``45号``, ``100弄``, ``5栋`` (ranges ``12-14号``).
_NUMBER_PART = re.compile(r"(\d+)(?:\s*[-~至]\s*\d+)?\s*(支弄|弄|号|栋|幢|座)")
#: A bare number right after a street suffix: ``西藏中路45``.
_BARE_NUMBER = re.compile(r"(?<=[路街道巷])\s*(\d+)(?!\d)")
#: A western house number: 1–4 digits, optionally a letter or bis/ter
#: (``7``, ``12b``, ``3 bis``); longer digit runs are postcodes.
_WESTERN_NUMBER = re.compile(r"(?<![\w])(\d{1,4})(?:\s?([a-z]|bis|ter))?(?![\w])", re.IGNORECASE)
_INTERSECTION_TAILS = (
    "十字路口",
    "交叉路口",
    "交叉口",
    "交汇处",
    "交界处",
    "交界",
    "交口",
    "路口",
    "附近",
)
#: Separators of two street names, tried in this order.
_INTERSECTION_SEPARATORS = (
    re.compile(r"\s*与\s*"),
    re.compile(r"\s*&\s*"),
    re.compile(r"\s+and\s+", re.IGNORECASE),
    re.compile(r"\s*/\s*"),
    re.compile(r"\s*、\s*"),
    re.compile(r"\s*和\s*"),
    re.compile(r"\s*交\s*"),
)
#: Characters ignored when names are compared.
_KEY_DROP = re.compile(r"[\s\-‐‑–—_'’`.,，、·・()（）]+")


@dataclass(frozen=True)
class ParsedAddress:
    """An address split into its parts by :func:`parse_address`.

    Attributes
    ----------
    streets : tuple of str
        One street text, or two for an intersection, as written (normalised,
        administrative prefixes removed). The single street text may still
        carry surrounding words (a building name, a western house number).
    body : str
        The whole normalised text without administrative prefixes.
    house_number : str or None
        Street-level number designation, such as ``"45号"`` or ``"100弄5号"``
        (floors, rooms and units are dropped).
    number : int or None
        The number that positions the address along the street: the lane
        (弄) number when there is one, else the house (号) number.
    admin : tuple of str
        The administrative prefixes removed, in order (``("上海市", "黄浦区")``).
    """

    streets: tuple[str, ...]
    body: str = ""
    house_number: str | None = None
    number: int | None = None
    admin: tuple[str, ...] = ()

    @property
    def is_intersection(self) -> bool:
        return len(self.streets) == 2


def normalize_text(text: str) -> str:
    """Normalise address text for parsing.

    Parameters
    ----------
    text : str
        Address as written.

    Returns
    -------
    str
        NFKC-normalised (full-width digits, letters, spaces and punctuation
        become half-width), traditional 號 read as 号, runs of whitespace
        collapsed to one space, ends stripped.
    """
    text = unicodedata.normalize("NFKC", text).replace("號", "号").replace("衖", "弄")
    return re.sub(r"\s+", " ", text).strip()


def match_key(text: str) -> str:
    """The form in which names and texts are compared.

    Parameters
    ----------
    text : str
        A street or place name, or address text.

    Returns
    -------
    str
        :func:`normalize_text`, case-folded, accents removed, with spaces,
        hyphens, dots, apostrophes, commas and brackets removed:
        ``"Avenue Saint-Laurent"`` and ``"avenue saint laurent"`` both give
        ``"avenuesaintlaurent"``, ``"Hôtel"`` gives ``"hotel"``.
    """
    folded = unicodedata.normalize("NFKD", normalize_text(text).casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _KEY_DROP.sub("", unicodedata.normalize("NFC", folded))


def housenumber_key(text: str) -> str:
    """The form in which house numbers are compared.

    Parameters
    ----------
    text : str
        A house number as written in OSM (``addr:housenumber``) or read from
        an address (``"45号"``, ``"100弄5号"``, ``"7 bis"``).

    Returns
    -------
    str
        :func:`match_key` without a final 号: ``"45号"`` and ``"45"`` both give
        ``"45"``, ``"100弄5号"`` gives ``"100弄5"``, ``"7 bis"`` gives ``"7bis"``.
    """
    key = match_key(text)
    return key[:-1] if key.endswith("号") else key


def significant_key(name: str) -> str:
    """The direction and ordinal characters of a name, in order (河南中路 → 南中)."""
    return "".join(ch for ch in name if ch in _SIGNIFICANT)


def _strip_prefixes(text: str, known: frozenset[str] = frozenset()) -> tuple[str, tuple[str, ...]]:
    """Drop country, province, city, district and subdistrict prefixes.

    Stops as soon as the text starts with a known name, so that a street such
    as 重庆中路 is never mistaken for a city. Returns the rest and the
    administrative parts removed (countries are dropped silently).
    """
    text = text.strip(" ,，")
    admin: list[str] = []
    changed = True
    while changed and text:
        changed = False
        if any(text.startswith(name) for name in known):
            break
        for prefix in _COUNTRY_PREFIXES:
            if text.startswith(prefix):
                text, changed = text[len(prefix) :].lstrip(" ,，"), True
                break
        if changed:
            continue
        for pattern in (_ADMIN_PREFIX, _SUBDISTRICT_PREFIX):
            match = pattern.match(text)
            if match:
                admin.append(match.group(0).strip())
                text, changed = text[match.end() :].lstrip(" ,，"), True
                break
        if changed:
            continue
        for prefix in _BARE_CITIES:
            if text.startswith(prefix):
                admin.append(prefix)
                text, changed = text[len(prefix) :].lstrip(" ,，"), True
                break
    return text, tuple(admin)


def _split_number(text: str) -> tuple[str, str | None, int | None]:
    """Split ``street + number + details`` into street text, designation and number."""
    match = _NUMBER_PART.search(text)
    if match is None:
        bare = _BARE_NUMBER.search(text)
        if bare is None:
            return text.strip(), None, None
        return text[: bare.start()].strip(), bare.group(1), int(bare.group(1))
    street = text[: match.start()].strip()
    parts: list[str] = []
    pos = match.start()
    while True:
        part = _NUMBER_PART.match(text, pos)
        if part is None:
            break
        parts.append(re.sub(r"\s+", "", part.group(0)))
        pos = part.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return street, "".join(parts), int(match.group(1))


def parse_address(text: str, known_names: frozenset[str] | set[str] = frozenset()) -> ParsedAddress:
    """Split an address into administrative prefixes, street(s) and house number.

    Parameters
    ----------
    text : str
        Address as written, e.g. ``"上海市黄浦区西藏中路 45 号 3楼"``,
        ``"人民路100弄5号601室"``, ``"西藏中路与福州路交叉口"``,
        ``"西藏中路 & 福州路"``, ``"7 Avenue Princesse Grace"``.
    known_names : set of str, optional
        Street and place names that must never be read as an administrative
        prefix.

    Returns
    -------
    ParsedAddress
        For an intersection, the two street texts; otherwise the street text
        (possibly with surrounding words) and the house number.

    Raises
    ------
    ValueError
        If ``text`` is empty or only whitespace.

    Examples
    --------
    >>> parse_address("黄浦区人民路100弄5号")
    ParsedAddress(streets=('人民路',), body='人民路100弄5号', house_number='100弄5号', number=100, admin=('黄浦区',))
    """
    if not isinstance(text, str) or not text.strip():  # type: ignore[redundant-expr]  # guard for untyped callers
        raise ValueError("address text is empty")
    known = frozenset(known_names)
    body, admin = _strip_prefixes(normalize_text(text), known)
    trimmed = body
    for tail in _INTERSECTION_TAILS:
        if trimmed.endswith(tail):
            trimmed = trimmed[: -len(tail)].rstrip()
            break
    for separator in _INTERSECTION_SEPARATORS:
        pieces = separator.split(trimmed, maxsplit=1)
        if len(pieces) == 2 and all(len(p.strip()) >= 2 for p in pieces):
            first, second = (p.strip() for p in pieces)
            if not _NUMBER_PART.search(second):
                return ParsedAddress(streets=(first, second), body=body, admin=admin)
    return single_street(body, admin)


def single_street(body: str, admin: tuple[str, ...] = ()) -> ParsedAddress:
    """Parse ``body`` (prefixes already removed) as one street with a number."""
    street, house_number, number = _split_number(body)
    return ParsedAddress(streets=(street,), body=body, house_number=house_number, number=number, admin=admin)


def western_house_number(text: str, street: str) -> tuple[str, int] | None:
    """The house number written next to a (western) street name.

    Parameters
    ----------
    text : str
        Normalised address text containing the street, e.g.
        ``"7 Avenue Princesse Grace, 98000 Monaco"``.
    street : str
        The street name found in the text.

    Returns
    -------
    tuple of (str, int) or None
        The designation as written (``"7"``, ``"12b"``) and its number; the
        number right before the street is preferred (``"7 Avenue …"``), then
        the one right after it (``"Avenue … 7"``). Digit runs of five or more
        (postcodes) are ignored. None when there is no number.
    """
    lowered = text.casefold()
    at = lowered.find(street.casefold())
    if at < 0:
        before, after = lowered, ""
    else:
        before, after = lowered[:at], lowered[at + len(street) :]
    candidates = list(_WESTERN_NUMBER.finditer(before))
    match: re.Match[str] | None
    if candidates and not before[candidates[-1].end() :].strip(" ,"):
        match = candidates[-1]
    else:
        match = _WESTERN_NUMBER.search(after.lstrip(" ,"))
        if match is None and candidates:
            match = candidates[-1]
    if match is None:
        return None
    designation = match.group(1) + (match.group(2) or "")
    return designation, int(match.group(1))
