from __future__ import annotations

from datetime import UTC, datetime

from ditio_images.interval import resolve_interval

START = datetime(2026, 4, 12, 6, tzinfo=UTC)
END = datetime(2026, 4, 12, 7, tzinfo=UTC)


def test_uses_the_run_data_interval_as_is():
    assert resolve_interval(START, END, None) == (START, END, False)


def test_manual_run_without_interval_lists_the_last_complete_hour():
    triggered = datetime(2026, 4, 12, 7, 42, 10, tzinfo=UTC)
    assert resolve_interval(None, None, triggered) == (START, END, True)


def test_zero_length_interval_is_widened_to_the_hour_before():
    moment = datetime(2026, 4, 12, 7, 0, tzinfo=UTC)
    assert resolve_interval(moment, moment, moment) == (START, END, True)
