"""The programme report's charts (matplotlib, PNG), with Chinese unit names rendered.

:func:`cjk_font` finds an installed font that has every glyph of the unit names
(Debian: ``fonts-wqy-microhei`` or ``fonts-noto-cjk``).  Without one the charts
label units by code (``U01`` ...) and a :class:`FontFallbackWarning` says so.
Money is drawn in yuan with thousands separators, dates on the time axis.  The
figures are display only: every value drawn is also in the report's CSV files
as integer fen.
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import re
import warnings
from functools import lru_cache

#: Families tried first, in order (what Debian, macOS and Windows ship).
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
                "WenQuanYi Zen Hei", "Noto Sans SC", "Source Han Sans CN", "Droid Sans Fallback",
                "PingFang SC", "Microsoft YaHei", "SimHei", "AR PL UMing CN", "AR PL UKai CN",
                "Noto Sans CJK JP", "Noto Sans CJK TC")
_CJK_FILE = re.compile(r"wqy|noto.*cjk|notosanssc|sourcehan|droidsansfallback|uming|ukai|"
                       r"simhei|msyh|pingfang", re.I)
#: Colours of the series (also what the screenshot test looks for).
COLOURS = {"issued": "#1f4e79", "milestone": "#c00000", "met": "#2e7d32",
           "fee_waived": "#4f81bd", "discount_partner": "#9bbb59", "discount_mcc": "#f2a93b",
           "disbursement": "#8064a2"}


class FontFallbackWarning(UserWarning):
    """No installed font can draw the unit names: charts show unit codes instead."""


@lru_cache(maxsize=None)
def cjk_font(text: str) -> str | None:
    """The family name of an installed font with a glyph for every character of
    ``text``, or None.  Fonts installed after matplotlib built its font cache are
    found by their file names and added."""
    from matplotlib import font_manager, ft2font

    needed = {ord(c) for c in text if not c.isascii()}

    def candidates():
        by_name = {f.name: f.fname for f in font_manager.fontManager.ttflist}
        return [(n, by_name[n]) for n in CJK_FAMILIES if n in by_name]

    found = candidates()
    if not found:
        for path in font_manager.findSystemFonts():
            if _CJK_FILE.search(path.rsplit("/", 1)[-1]):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = candidates()
    for name, path in found:
        try:
            if needed <= set(ft2font.FT2Font(path).get_charmap()):
                return name
        except (OSError, RuntimeError, ValueError):
            continue
    return None


class Charts:
    """Draws the charts; ``labels`` shows units by name when a CJK font is there."""

    def __init__(self, names: list[str]):
        self.font = cjk_font("".join(sorted(set("".join(names)))))
        if self.font is None:
            warnings.warn("no installed font can draw the Chinese unit names (install "
                          "fonts-wqy-microhei or fonts-noto-cjk): charts label units by code",
                          FontFallbackWarning, stacklevel=2)

    def label(self, code: str, name: str) -> str:
        return f"{code} {name}" if self.font else code

    def _png(self, draw, size=(10, 4.4)) -> str:
        import matplotlib
        from matplotlib.figure import Figure

        families = [self.font, "DejaVu Sans"] if self.font else ["DejaVu Sans"]
        with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": families,
                                    "axes.unicode_minus": False}):
            fig = Figure(figsize=size, dpi=100)
            ax = fig.add_subplot()
            draw(fig, ax)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
        return base64.b64encode(buf.getvalue()).decode()

    # -- rollout ----------------------------------------------------------------------------
    def district(self, months: list[dt.date], cumulative: list[int], milestones: list[dict]):
        """Cards issued in the district by each month end, and the milestones."""
        def draw(fig, ax):
            ax.step(months, cumulative, where="post", color=COLOURS["issued"], linewidth=2.5,
                    label="cards issued (registry member_from), cumulative")
            _milestones(ax, milestones)
            _axes(ax, "cards", count=True)
            ax.set_title("District rollout: cards issued against the notice's milestones")
            ax.legend(loc="upper left")
        return self._png(draw)

    def bank(self, bank: str, months: list[dt.date], series: dict[str, list[int]],
             milestones: list[dict], targets: dict[str, int]):
        """One bank: cumulative cards per unit (stacked), milestones, the bank's share."""
        def draw(fig, ax):
            import matplotlib
            cmap = matplotlib.colormaps["tab20"]
            labels = list(series)
            ax.stackplot(months, *[series[k] for k in labels], labels=labels, step="post",
                         colors=[cmap(i % 20) for i in range(len(labels))])
            share = [dict(m, target=targets.get(m["date"]), met=None) for m in milestones]
            _milestones(ax, share)
            _axes(ax, "cards", count=True)
            ax.set_title(f"{bank}: cards issued by union unit (cumulative); "
                         f"milestone marks = {bank}'s share of the district number")
            ax.legend(loc="upper left", fontsize=8, ncol=2 if len(labels) > 8 else 1)
        return self._png(draw, size=(10, 5.2))

    # -- benefits ---------------------------------------------------------------------------
    def monthly(self, months: list[dt.date], card: dict[str, list[int]],
                disbursed: dict[str, list[int]], names: dict[str, str]):
        """Two panels of stacked bars per month (fen in, yuan drawn): what the card saved
        members (fees waived, discounts), and the union benefits paid onto it."""
        def draw(fig, ax):
            import matplotlib
            ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
            ax.set_subplotspec(fig.add_gridspec(2, 1)[0])
            cmap = matplotlib.colormaps["Set2"]
            colours = {**{k: COLOURS[k] for k in card},
                       **{k: cmap(i) for i, k in enumerate(disbursed)}}
            for axis, series, title in (
                    (ax, card, "Card benefits by month: fees waived and discounts"),
                    (ax2, disbursed, "Union benefits paid onto the card, by benefit")):
                bottom = [0.0] * len(months)
                for key, fen in series.items():
                    yuan = [v / 100 for v in fen]  # drawing only: the CSV holds the fen
                    axis.bar(months, yuan, bottom=bottom, width=24, align="edge",
                             color=colours[key], label=names.get(key, key))
                    bottom = [b + y for b, y in zip(bottom, yuan)]
                _axes(axis, "yuan (CNY)")
                axis.set_title(title)
                axis.legend(loc="upper left", fontsize=8)
        return self._png(draw, size=(10, 7.5))

    def by_unit(self, labels: list[str], series: dict[str, list[int]], names: dict[str, str],
                per_member: list[int]):
        """Horizontal stacked bars per unit (fen), each with its per-member average."""
        def draw(fig, ax):
            from matplotlib.ticker import FuncFormatter
            left = [0.0] * len(labels)
            for key, fen in series.items():
                yuan = [v / 100 for v in fen]
                ax.barh(labels, yuan, left=left, color=COLOURS[key], label=names[key])
                left = [a + y for a, y in zip(left, yuan)]
            for y, (x, avg) in enumerate(zip(left, per_member)):
                ax.annotate(f" {avg / 100:,.2f} per member", (max(x, 0), y), va="center",
                            fontsize=8)
            ax.invert_yaxis()
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.set_xlabel("yuan (CNY)")
            ax.margins(x=0.18)
            ax.set_title("Benefits delivered by union unit, whole period")
            ax.legend(loc="lower right", fontsize=8)
        return self._png(draw, size=(10, 1.2 + 0.32 * len(labels)))


def _milestones(ax, milestones):
    """Dashed lines at the milestone dates; a mark at each number (met: green)."""
    for m in milestones:
        day = dt.date.fromisoformat(m["date"])
        ax.axvline(day, color=COLOURS["milestone"], linestyle="--", linewidth=1)
        ax.annotate(m["date"], (day, 1), xycoords=("data", "axes fraction"), rotation=90,
                    va="top", ha="right", fontsize=8, color=COLOURS["milestone"])
        if m.get("target") is not None:
            colour = COLOURS["met"] if m.get("met") else COLOURS["milestone"]
            ax.plot([day], [m["target"]], marker="D", markersize=8, color=colour, zorder=5)
            ax.annotate(f"target {m['target']:,}", (day, m["target"]), xytext=(7, -3),
                        textcoords="offset points", ha="left", va="top", fontsize=8,
                        color=colour)
    ax.margins(x=0.09)  # room for the last milestone's label


def _axes(ax, ylabel: str, count: bool = False):
    import matplotlib.dates as mdates
    from matplotlib.ticker import FuncFormatter
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=14))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.tick_params(axis="x", labelrotation=45)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if count:
        ax.set_ylim(bottom=0)
