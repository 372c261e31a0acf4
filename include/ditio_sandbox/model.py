"""Static organisation data and small helpers shared by the sandbox tenant.

Ownership model: the API client belongs to `Nordbygg AS`, a parent company with one
subsidiary (`Nordbygg Anlegg AS`). A partner company shares one project with it. A row's
`companyId` is the uploader's company; `projectCompanyId` is the company owning the project.
`CompanyId`, `OwnCompanyDataOnly` and `ExcludeDataFromSubsidiaries` all act on
`projectCompanyId`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SOURCES = ("feed", "alert", "checklist")
COLLECTION_REFS = {"feed": "Post", "alert": "Alert", "checklist": "ChecklistSubmission"}
SOURCE_WEIGHTS = (5, 2, 3)

ALERT_KINDS = ("RUH – uønsket hendelse", "Avvik", "Skade på maskin", "Farlig forhold")
CHECKLIST_TEMPLATES = (
    "Daglig HMS-runde",
    "Kontroll av stillas",
    "Sikker jobbanalyse (SJA)",
    "Overlevering betong",
    "Sjekkliste før støp",
)


@dataclass(frozen=True)
class Company:
    company_id: str
    name: str
    parent_id: str | None = None


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    company_id: str


@dataclass(frozen=True)
class Project:
    project_id: str
    number: str
    name: str
    company_id: str
    tasks: tuple[tuple[str, str], ...]
    user_indexes: tuple[int, ...]
    centre: tuple[float, float]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _oid(prefix: str, number: int) -> str:
    return f"{prefix}{number:0{24 - len(prefix)}x}"


OWN_COMPANY = _oid("62", 1)
SUBSIDIARY = _oid("62", 2)
PARTNER = _oid("62", 3)
COMPANIES = (
    Company(OWN_COMPANY, "Nordbygg AS"),
    Company(SUBSIDIARY, "Nordbygg Anlegg AS", parent_id=OWN_COMPANY),
    Company(PARTNER, "Fjordvei Entreprenør AS"),
)

USERS = tuple(
    User(_oid("7a3f", number), name, company)
    for number, (name, company) in enumerate(
        (
            ("Kari Nordmann", OWN_COMPANY),
            ("Ola Hansen", OWN_COMPANY),
            ("Åse Bråten", OWN_COMPANY),
            ("Bjørn Kåre Løvås", OWN_COMPANY),
            ("Siri Ødegård", SUBSIDIARY),
            ("Jørgen Sæther", SUBSIDIARY),
            ("Marte Kvåle", SUBSIDIARY),
            ("Per-Øyvind Strøm", PARTNER),
            ("Ingrid Haugen", PARTNER),
            ("Lars Ærø", PARTNER),
        ),
        start=1,
    )
)


def _tasks(first: int, *names: str) -> tuple[tuple[str, str], ...]:
    return tuple((_oid("65b", first + offset), name) for offset, name in enumerate(names))


PROJECTS = (
    Project(
        _oid("65a", 2),
        "P-2026-042",
        "Prosjekt Fjellhall",
        OWN_COMPANY,
        _tasks(3, "Brudekke", "Forskaling", "Armering", "Sprengning"),
        (0, 1, 2, 7, 8),
        (59.9139, 10.7522),
    ),
    Project(
        _oid("65a", 3),
        "P-2026-017",
        "Prosjekt Bryggekanten",
        OWN_COMPANY,
        _tasks(16, "Støping", "Forskaling", "Rekkverk"),
        (0, 1, 3),
        (60.3913, 5.3221),
    ),
    Project(
        _oid("65a", 4),
        "P-2025-118",
        "Prosjekt Elvekryssing",
        SUBSIDIARY,
        _tasks(32, "Masseutskifting", "Grøftearbeid", "Drenering"),
        (4, 5, 6, 2),
        (63.4305, 10.3951),
    ),
    Project(
        _oid("65a", 5),
        "P-2026-051",
        "Prosjekt Skogveien",
        PARTNER,
        _tasks(48, "Asfaltering", "Tunnelsikring"),
        (7, 8, 9),
        (58.1467, 7.9956),
    ),
    Project(
        _oid("65a", 6),
        "P-2026-063",
        "Prosjekt Rørvik bru",
        OWN_COMPANY,
        _tasks(64, "Brudekke", "Armering", "Støping"),
        (1, 3, 4, 5),
        (64.8621, 11.2373),
    ),
)
PROJECT_WEIGHTS = (4, 2, 2, 1, 2)


def subsidiaries_of(company_id: str) -> set[str]:
    return {company.company_id for company in COMPANIES if company.parent_id == company_id}


def mix(seed: object, *parts: object) -> int:
    """A stable 64-bit number from a seed and a path of parts (independent of PYTHONHASHSEED)."""
    text = "|".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def object_id(seconds: int, machine: int, counter: int) -> str:
    """A 24-hex-character id laid out like a MongoDB ObjectId."""
    return f"{seconds & 0xFFFFFFFF:08x}{machine & 0xFFFFFFFFFF:010x}{counter & 0xFFFFFF:06x}"


def parse_datetime(value: str) -> int:
    """Milliseconds since the epoch for an ISO 8601 string; naive values are taken as UTC."""
    return to_millis(datetime.fromisoformat(value.strip()))


def to_millis(value: str | datetime | int) -> int:
    """Accept an ISO string, an aware datetime or epoch milliseconds."""
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (aware - _EPOCH) // timedelta(milliseconds=1)
    return parse_datetime(value)


def format_millis(millis: int) -> str:
    """`2026-04-12T07:00:00.000Z` style UTC timestamp."""
    seconds, rest = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest:03d}Z"


def require_loopback(host: str) -> str:
    """Return `host` if it is a loopback address (or `localhost`); raise otherwise."""
    bare = host.strip("[]")
    if bare == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(bare).is_loopback
    except ValueError as err:
        raise ValueError(f"host {host!r} is not an IP address; use one in 127.0.0.0/8") from err
    if not loopback:
        raise ValueError(f"host {host!r} is not a loopback address; use one in 127.0.0.0/8")
    return host
