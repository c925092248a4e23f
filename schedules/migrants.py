"""(being built) scheduled effects of the migrants part: producers registered with schedules.engine."""

from __future__ import annotations
