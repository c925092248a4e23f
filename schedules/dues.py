"""(being built) scheduled effects of the dues part: producers registered with schedules.engine."""

from __future__ import annotations
