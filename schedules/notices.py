"""(being built) scheduled effects of the notices part: producers registered with schedules.engine."""

from __future__ import annotations
