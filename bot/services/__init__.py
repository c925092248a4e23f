"""The services handlers and schedules call: the domain plus storage, no Telegram."""

from __future__ import annotations

from bot.clock import Clock
from bot.services.branches import Actor, BranchService
from bot.services.calendar import CalendarService
from bot.services.assessment import AssessmentService
from bot.services.declarations import DeclarationService
from bot.services.democratic import DemocraticService
from bot.services.dues import DuesService
from bot.services.exports import ExportService
from bot.services.grading import GradingService
from bot.services.meetings import MeetingService
from bot.services.migrants import MigrantService
from bot.services.notices import NoticeService
from bot.services.points import PointsService
from bot.services.confirms import ConfirmService
from bot.services.rewards import RewardService
from bot.services.roster import RosterService
from bot.services.town_review import TownReviewService
from bot.services.towns import TownService
from bot.services.transfers import TransferService
from storage.db import Database

__all__ = ["Actor", "Services"]


class Services:
    def __init__(self, db: Database, clock: Clock | None = None, default_timezone: str = "Asia/Shanghai"):
        self.db = db
        self.clock = clock or Clock()
        db.now = self.clock.now  # rows are stamped with the same clock the services read
        self.branches = BranchService(db, self.clock, default_timezone)
        self.roster = RosterService(db, self.clock)
        self.declarations = DeclarationService(db, self.clock)
        self.points = PointsService(db, self.clock)
        self.confirms = ConfirmService(db, self.clock)
        self.calendar = CalendarService(db, self.clock)
        self.meetings = MeetingService(db, self.clock)
        self.dues = DuesService(db, self.clock)
        self.migrants = MigrantService(db, self.clock)
        self.assessment = AssessmentService(db, self.clock)
        self.notices = NoticeService(db, self.clock)
        self.democratic = DemocraticService(db, self.clock)
        self.grading = GradingService(db, self.clock)
        self.exports = ExportService(db, self.clock)
        self.rewards = RewardService(db, self.clock)
        self.town_review = TownReviewService(db, self.clock, self.grading)
        self.towns = TownService(db, self.clock)
        self.transfers = TransferService(db, self.clock)
