"""The charts render Chinese with the packaged font: no "Glyph missing" warning, a valid PNG."""

from __future__ import annotations

import asyncio
import io
import logging
import warnings
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib import rc_context
from PIL import Image

from bot import charts
from bot.presets import preset

PNG = b"\x89PNG\r\n\x1a\n"
XISHUI = preset("xishui")
MONTHS = [(f"{m}月", Decimal(v)) for m, v in zip(range(1, 13), ["95", "88.5", "72", "60", "55", "81", "90", "100",
                                                             "47", "66.25", "79", "85"])]
FIGURES = [Decimal(v) for v in ["92", "85.5", "81", "80", "79.99", "77", "70", "68", "60", "58", "52", "49", "0"]]


def rendered(render, caplog) -> tuple[bytes, list[str]]:
    """Render and collect what matplotlib complained about (warnings and log records)."""
    caplog.set_level(logging.WARNING, logger="matplotlib")
    caplog.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render()
    complaints = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    return png, complaints


def glyphs_missing(complaints: list[str]) -> list[str]:
    return [c for c in complaints if "Glyph" in c or "missing from font" in c]


def check_png(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG)
    image = Image.open(io.BytesIO(png))
    image.verify()
    return image.size


def test_the_font_comes_from_the_package():
    import pylopdf_fonts_zh_cn
    from matplotlib import font_manager

    family = charts.font_family()
    assert family == "Noto Sans SC"
    found = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert found == str(pylopdf_fonts_zh_cn.sans_path())  # the packaged file, not a system font


def test_member_trend_renders_chinese(caplog):
    png, complaints = rendered(lambda: charts.member_trend_png(
        "张三", MONTHS, XISHUI.bands, title="张三 2026年每月得分（兰溪镇红星村党支部）", xlabel="月份", ylabel="得分"), caplog)
    assert not glyphs_missing(complaints), complaints
    assert check_png(png) == (960, 540)


def test_distribution_renders_chinese(caplog):
    png, complaints = rendered(lambda: charts.distribution_png(
        "兰溪镇红星村党支部 2026年度积分分布", FIGURES, XISHUI.bands, xlabel="年度积分", ylabel="人数"), caplog)
    assert not glyphs_missing(complaints), complaints
    check_png(png)


def test_the_check_would_see_empty_boxes(caplog):
    """The control: with a font that has no Chinese, matplotlib does complain (so the checks above mean something)."""
    def latin_only() -> bytes:
        with rc_context({"font.family": ["DejaVu Sans"]}):
            from matplotlib.figure import Figure
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            figure = Figure()
            FigureCanvasAgg(figure)
            figure.add_subplot().set_title("党员积分")
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
            return buffer.getvalue()

    _, complaints = rendered(latin_only, caplog)
    assert glyphs_missing(complaints)


def test_band_lines_from_rulebook_bands_and_pairs():
    assert charts.band_lines(XISHUI.bands)[:3] == [("优秀", Decimal(80)), ("合格", Decimal(70)), ("基本合格", Decimal(60))]
    assert charts.band_lines(XISHUI.bands, "en")[0] == ("Excellent", Decimal(80))
    assert charts.band_lines([("A", Decimal(90)), ("B", Decimal(95))]) == [("B", Decimal(95)), ("A", Decimal(90))]


@settings(max_examples=8, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=120, places=2), max_size=30))
def test_distribution_accepts_any_figures(figures):
    check_png(charts.distribution_png("分布", figures, XISHUI.bands))


@settings(max_examples=25, deadline=None)
@given(members=st.integers(min_value=1, max_value=300), low=st.integers(min_value=-60, max_value=100),
       spread=st.integers(min_value=0, max_value=150), lang=st.sampled_from(["zh", "en"]))
def test_nothing_the_distribution_writes_falls_outside_the_picture(members, low, spread, lang):
    """Its margins are fixed (no tight_layout: /grade waits for the chart), so for any branch size — a
    count of 300 on one bar, three-digit and negative figures — and either language's labels, every text
    (title, axis labels, tick labels, counts, band labels) lies within the image."""
    figures = [Decimal(low) + Decimal(spread) * i / max(members - 1, 1) for i in range(members)]
    labels = {"zh": ("兰溪镇红星村党支部 2026年度积分分布", "年度积分", "人数"),
              "en": ("Score distribution 2026, Hongxing Village Party Branch of Lanxi Town", "Year score", "Members")}[lang]
    with rc_context(charts._style()):
        figure = charts.distribution_figure(labels[0], figures, XISHUI.bands, xlabel=labels[1], ylabel=labels[2], lang=lang)
        canvas = charts.FigureCanvasAgg(figure)
        renderer = canvas.get_renderer()
        figure.draw(renderer)
        axes = figure.axes[0]
        written = [axes.title, axes.xaxis.label, axes.yaxis.label, *axes.texts]  # texts: band labels and counts
        for axis, (low_end, high_end) in ((axes.xaxis, axes.get_xlim()), (axes.yaxis, axes.get_ylim())):
            written += [tick.label1 for tick in axis.get_major_ticks() if low_end <= tick.get_loc() <= high_end]
        outside = [text.get_text() for text in written
                   if text.get_text() and not _inside(text.get_window_extent(renderer), figure.bbox)]
    assert not outside, outside


def _inside(box, frame, slack: float = 1.0) -> bool:
    return box.x0 >= frame.x0 - slack and box.y0 >= frame.y0 - slack and box.x1 <= frame.x1 + slack and box.y1 <= frame.y1 + slack


def test_the_warm_up_draws_without_a_complaint(caplog):
    """bot.app runs it once the bot has started, off the event loop, so the first /grade does not pay for it."""
    _, complaints = rendered(lambda: charts.warm_up(), caplog)
    assert not complaints, complaints
    assert charts.font_family.cache_info().currsize == 1  # the font is registered


async def test_the_bot_warms_the_charts_up_once_it_has_started(tmp_path, monkeypatch):
    """A job run once the application has started (not a task created before it runs: PTB warns about
    those and never awaits them), off the event loop."""
    import threading

    from bot.app import build_application
    from bot.clock import FixedClock
    from bot.offline import OfflineTelegram
    from bot.services import Services
    from storage.db import Database

    threads: list[str] = []
    monkeypatch.setattr(charts, "warm_up", lambda: threads.append(threading.current_thread().name))
    world = OfflineTelegram()
    db = await Database(tmp_path / "w.sqlite3").open()
    app = build_application(world.token, Services(db, FixedClock(datetime(2026, 3, 20, 2, tzinfo=UTC))), request=world.request,
                            rate_limit=False, set_menus=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await app.initialize()
        await app.post_init(app)
        await app.start()
        for _ in range(100):
            if threads:
                break
            await asyncio.sleep(0.02)
        await app.stop()
        await app.shutdown()
    await db.close()
    assert len(threads) == 1 and threads[0] != threading.main_thread().name
    assert not [w for w in caught if "create_task" in str(w.message)], [str(w.message) for w in caught]
