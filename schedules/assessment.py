"""(being built) scheduled effects of the assessment part: producers registered with schedules.engine."""

from __future__ import annotations
