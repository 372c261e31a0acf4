"""A deterministic local fake of the Ditio Reporting and Core APIs.

`Tenant` holds the seeded data, `Sandbox` serves it over HTTP on loopback, with faults and
request stats that tests drive. Run `python -m ditio_sandbox --help` for the command.
"""

from __future__ import annotations

from ditio_sandbox.faults import ACTIONS, ENDPOINTS, FaultRule, Faults
from ditio_sandbox.images import sniff_content_type
from ditio_sandbox.sandbox import Sandbox
from ditio_sandbox.stats import Stats
from ditio_sandbox.tenant import Query, Tenant

__all__ = [
    "ACTIONS",
    "ENDPOINTS",
    "FaultRule",
    "Faults",
    "Query",
    "Sandbox",
    "Stats",
    "Tenant",
    "sniff_content_type",
]
