"""(being built) scheduled effects of the meetings part: producers registered with schedules.engine."""

from __future__ import annotations
