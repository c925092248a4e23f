"""(being built) scheduled effects of the year end: producers registered with schedules.engine."""

from __future__ import annotations
