"""Deterministic, thread-safe fault rules for the sandbox server.

A rule names an endpoint (`token`, `list`, `file`, `blob`) and an action. It counts the
requests it matches (1-based, from when it was added) and fires for counts in
[start, end]: `nth=k` means start=end=k; no window means every request. `file_id`,
`file_ids` or `when` (a predicate on the file id) narrow what a rule matches.

When several rules fire on one request, every `latency` rule adds its delay and the first
other rule (in insertion order) decides the action.

    faults.add("file", "status", nth=2, status=503)
    faults.add("list", "status", start=1, end=3, status=429, retry_after=2)
    faults.add("list", "status", nth=1, status=429, retry_after=5, retry_after_date=True)
    faults.add("file", "reset", at="headers", file_id=some_id)
    faults.add("file", "truncate", nth=1, fraction=0.25)
    faults.add("file", "latency", seconds=0.1)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ENDPOINTS = ("token", "list", "file", "blob")
_ALL = ENDPOINTS
ACTIONS: dict[str, tuple[str, ...]] = {
    "status": _ALL,
    "reset": _ALL,
    "truncate": _ALL,
    "stall": _ALL,
    "latency": _ALL,
    "non_json": ("token", "list"),
    "wrong_size": ("file", "blob"),
    "bad_envelope": ("list",),
    "repeat_token": ("list",),
    "empty_page": ("list",),
    "expire_tokens": ("list", "file"),
    "revoke": ("token", "list", "file"),
}
_PARAMS: dict[str, dict[str, Any]] = {
    "status": {"status": None, "retry_after": None, "retry_after_date": False, "body": None},
    "reset": {"at": "start"},
    "truncate": {"fraction": 0.5},
    "stall": {"seconds": 5.0},
    "latency": {"seconds": None},
    "wrong_size": {"delta": -1},
}


@dataclass
class FaultRule:
    endpoint: str
    action: str
    start: int = 1
    end: int | None = None
    file_ids: frozenset[str] | None = None
    when: Callable[[str], bool] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    def matches(self, endpoint: str, file_id: str | None) -> bool:
        if endpoint != self.endpoint:
            return False
        if self.file_ids is not None and file_id not in self.file_ids:
            return False
        return self.when is None or (file_id is not None and bool(self.when(file_id)))

    def in_window(self) -> bool:
        return self.start <= self.seen and (self.end is None or self.seen <= self.end)

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "action": self.action,
            "start": self.start,
            "end": self.end,
            "file_ids": sorted(self.file_ids) if self.file_ids is not None else None,
            "predicate": self.when is not None,
            "params": dict(self.params),
            "seen": self.seen,
            "fired": self.fired,
        }


@dataclass
class Decision:
    """What the faults say about one request: added delay and the acting rule, if any."""

    delay: float = 0.0
    rule: FaultRule | None = None

    @property
    def action(self) -> str | None:
        return self.rule.action if self.rule else None

    def param(self, name: str) -> Any:
        return self.rule.params[name] if self.rule else None


class Faults:
    """The fault rules of one sandbox; safe to change while the server runs."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(
        self,
        endpoint: str,
        action: str,
        *,
        nth: int | None = None,
        start: int | None = None,
        end: int | None = None,
        file_id: str | None = None,
        file_ids: list[str] | set[str] | None = None,
        when: Callable[[str], bool] | None = None,
        **params: Any,
    ) -> FaultRule:
        """Add a rule; see the module docstring for the counting window and actions."""
        _check_action(endpoint, action)
        first, last = _window(nth, start, end)
        ids = set(file_ids or ())
        if file_id is not None:
            ids.add(file_id)
        rule = FaultRule(
            endpoint,
            action,
            first,
            last,
            frozenset(ids) if ids else None,
            when,
            _params(action, params),
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_json(self, spec: dict[str, Any]) -> FaultRule:
        """Add a rule from a JSON object (the HTTP control surface); predicates excluded."""
        if not isinstance(spec, dict):
            raise ValueError(f"a fault rule must be a JSON object, got {spec!r}")
        options = dict(spec)
        if "when" in options:
            raise ValueError("'when' predicates exist only in Python; use file_id or file_ids")
        try:
            endpoint, action = options.pop("endpoint"), options.pop("action")
        except KeyError as err:
            raise ValueError(f"a fault rule needs 'endpoint' and 'action', got {spec!r}") from err
        return self.add(endpoint, action, **options)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.describe() for rule in self._rules]

    def decide(self, endpoint: str, file_id: str | None = None) -> Decision:
        """Count this request against every matching rule and return what fires."""
        decision = Decision()
        with self._lock:
            for rule in self._rules:
                if not rule.matches(endpoint, file_id):
                    continue
                rule.seen += 1
                if not rule.in_window():
                    continue
                if rule.action == "latency":
                    decision.delay += float(rule.params["seconds"])
                    rule.fired += 1
                elif decision.rule is None:
                    decision.rule = rule
                    rule.fired += 1
        return decision


def _check_action(endpoint: str, action: str) -> None:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"fault endpoint {endpoint!r} is unknown; use one of {ENDPOINTS}")
    if action not in ACTIONS:
        raise ValueError(f"fault action {action!r} is unknown; use one of {sorted(ACTIONS)}")
    if endpoint not in ACTIONS[action]:
        raise ValueError(f"fault action {action!r} applies to {ACTIONS[action]}, not {endpoint!r}")


def _window(nth: int | None, start: int | None, end: int | None) -> tuple[int, int | None]:
    if nth is not None:
        if start is not None or end is not None:
            raise ValueError("give either nth or start/end, not both")
        start = end = nth
    first = 1 if start is None else start
    if first < 1 or (end is not None and end < first):
        raise ValueError(f"request window start={first}, end={end} is empty; counts start at 1")
    return first, end


def _params(action: str, given: dict[str, Any]) -> dict[str, Any]:
    defaults = _PARAMS.get(action, {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(
            f"{action!r} takes {sorted(defaults) or 'no options'}, not {sorted(unknown)}"
        )
    params = {**defaults, **given}
    missing = [name for name, value in params.items() if value is None and name in _REQUIRED]
    if missing:
        raise ValueError(f"{action!r} needs {missing}")
    _validate(action, params)
    return params


_REQUIRED = {"status", "seconds"}


def _validate(action: str, params: dict[str, Any]) -> None:
    if action == "status" and not 100 <= int(params["status"]) <= 599:
        raise ValueError(f"status={params['status']!r} is not an HTTP status code")
    if action == "reset" and params["at"] not in ("start", "headers"):
        raise ValueError(f"reset at={params['at']!r}; use 'start' or 'headers'")
    if action == "truncate" and not 0 <= float(params["fraction"]) < 1:
        raise ValueError(f"truncate fraction={params['fraction']!r}; use 0 <= fraction < 1")
    if action == "wrong_size" and int(params["delta"]) == 0:
        raise ValueError("wrong_size delta must not be 0")
