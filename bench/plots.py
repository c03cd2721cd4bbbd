"""The leaderboard's plots, as SVG: per dataset and split, every configuration's top-1 (a
dot per seed, the mean with its s.d., chance dashed) and, where the networks differ in
cost, top-1 against multiply-adds. A series (an architecture as built and a modality)
keeps one colour and marker in every plot of a page, and no two series share them; text is
`FONT_PT` points in figures `FIGURE_WIDTH_IN` inches wide, so a phone shows it at 10 px
or more.
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

from vidbench.bench.leaderboard import MODALITY_NAMES, PROTOCOL_ORDER, Group, table_title
from vidbench.bench.paper import ARCH_NAMES, PAPER_ORDER

MARKERS = {"rgb": "o", "flow": "s", "rgb+flow": "D"}
EXTRA_MARKERS = ("^", "v", "P", "X", "<", ">", "h", "*")
FONT_PT = 10  # every text in the plots; the page keeps it at 10 px or more on a phone
FIGURE_WIDTH_IN = 4.5


def series_styles(summary: dict[Group, dict[str, Any]]) -> dict[Group, dict[str, str]]:
    """Per group: its series' name, colour and marker, the same for a series in every plot
    of the page and never shared by two series. A series is an architecture as built and a
    modality (`C3D · RGB`); where one plot holds two configurations of it, the second is
    a series of its own (`C3D · RGB #2`). A colour per architecture as built (the paper's
    order), a marker per modality, other markers once the colours run out."""
    from matplotlib import colormaps, colors

    keys = sorted(summary, key=plot_order)
    variant: dict[Group, int] = {}
    mates: dict[tuple, list[str]] = {}
    for key in keys:  # the n-th configuration of a series within one plot: variant n
        facet = (key.protocol, key.start, key.dataset, key.fold)
        setups = mates.setdefault((facet, key.arch, summary[key]["label"], key.modality), [])
        if key.setup not in setups:
            setups.append(key.setup)
        variant[key] = setups.index(key.setup)
    arms = list(dict.fromkeys((k.arch, summary[k]["label"], variant[k]) for k in keys))
    palette = [colors.to_hex(c) for c in colormaps["tab10"].colors]
    styles: dict[Group, dict[str, str]] = {}
    for key in keys:
        arm = arms.index((key.arch, summary[key]["label"], variant[key]))
        name = f"{ARCH_NAMES.get(key.arch, key.arch)} · {MODALITY_NAMES[key.modality]}"
        if variant[key]:
            name += f" #{variant[key] + 1}"
        round_ = arm // len(palette)
        marker = (
            MARKERS[key.modality]
            if round_ == 0
            else EXTRA_MARKERS[
                (round_ * 3 + list(MARKERS).index(key.modality)) % len(EXTRA_MARKERS)
            ]
        )
        styles[key] = {"name": name, "colour": palette[arm % len(palette)], "marker": marker}
    return styles


def plot_order(key: Group) -> tuple:
    """The paper's order: architecture, then protocol (Original, Fixed, Full-FT), modality."""
    arch = [*PAPER_ORDER, key.arch].index(key.arch)
    protocol = [*PROTOCOL_ORDER, key.protocol].index(key.protocol)
    modality = list(MODALITY_NAMES).index(key.modality)
    return (arch, protocol, key.dataset, modality, key.setup, key.fold, str(key.start))


class Plot(NamedTuple):
    svg: str
    caption: str
    series: list[dict[str, str]]  # name, colour, marker of every series drawn


def plots(summary: dict[Group, dict[str, Any]]) -> list[Plot]:
    """Per protocol, start, dataset and split (a facet each): top-1 of every series as a dot
    per seed and the mean ± s.d., chance as a dashed line; and top-1 against multiply-adds
    where the facet's networks differ in cost (else the plot would say nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "vidbench"  # the same records, the same file
    matplotlib.rcParams["font.size"] = FONT_PT
    styles = series_styles(summary)
    facets: dict[tuple, list[Group]] = {}
    for key in sorted(summary, key=plot_order):
        if summary[key]["top1"] is not None:
            facet = (key.protocol, key.start, key.dataset, key.fold)
            facets.setdefault(facet, []).append(key)
    out = []
    for (protocol, start, dataset, fold), keys in facets.items():
        where = f"{dataset}, split {fold}, {table_title(protocol, start)}"
        drawn = [styles[k] for k in keys]
        out.append(Plot(seed_plot(plt, keys, summary, styles), f"Top-1 per seed: {where}", drawn))
        gmacs = [summary[k]["gmacs"] for k in keys if summary[k]["gmacs"]]
        if len(gmacs) > 1 and max(gmacs) / min(gmacs) > 1.2:
            svg = cost_plot(plt, [k for k in keys if summary[k]["gmacs"]], summary, styles)
            out.append(Plot(svg, f"Top-1 against multiply-adds per clip: {where}", drawn))
    return out


def seed_plot(plt: Any, keys: list[Group], summary: dict, styles: dict) -> str:
    """A row per series: each seed's top-1 as a hollow dot, the mean as a filled marker with
    the s.d. as a bar; the series' name above its row; chance as a dashed line."""
    figure, axes = plt.subplots(figsize=(FIGURE_WIDTH_IN, 0.6 + 0.42 * len(keys)))
    for row, key in enumerate(keys):
        entry, style = summary[key], styles[key]
        y = len(keys) - row
        seeds = [value for _, value in entry["per_seed"]]
        axes.plot(
            seeds,
            [y] * len(seeds),
            linestyle="none",
            marker=style["marker"],
            markerfacecolor="none",
            color=style["colour"],
            markersize=6,
            alpha=0.8,
        )
        axes.errorbar(
            entry["top1"],
            y,
            xerr=entry["top1_std"] or 0,
            capsize=3,
            marker=style["marker"],
            color=style["colour"],
            markersize=8,
        )
        axes.annotate(
            style["name"],
            (1, y),
            xytext=(0, 7),
            textcoords="offset points",
            fontsize=FONT_PT,
            va="bottom",
        )
    chance = summary[keys[0]]["chance"]
    if chance:
        axes.axvline(chance, color="grey", linestyle="--", linewidth=1)
    axes.set_xlim(-2, 103)  # room for a marker at 0 or 100
    axes.set_ylim(0.4, len(keys) + 0.9)
    axes.set_yticks([])
    axes.set_xlabel("video top-1 (%)" + (f"; dashed: chance {chance:.1f}" if chance else ""))
    axes.grid(axis="x", alpha=0.3)
    return svg_of(plt, figure)


def cost_plot(plt: Any, keys: list[Group], summary: dict, styles: dict) -> str:
    """Top-1 (mean ± s.d.) against multiply-adds per clip (log scale); legend below."""
    from matplotlib import ticker

    figure, axes = plt.subplots(figsize=(FIGURE_WIDTH_IN, 3.2))
    for key in keys:
        entry, style = summary[key], styles[key]
        axes.errorbar(
            entry["gmacs"],
            entry["top1"],
            yerr=entry["top1_std"] or 0,
            capsize=3,
            marker=style["marker"],
            color=style["colour"],
            linestyle="none",
            markersize=7,
            label=style["name"],
        )
    chance = summary[keys[0]]["chance"]
    if chance:
        axes.axhline(chance, color="grey", linestyle="--", linewidth=1)
    axes.set_xscale("log")
    xs = [summary[k]["gmacs"] for k in keys]
    axes.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
    axes.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 3.0)))
    axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_xlabel("GMACs per clip (log scale)")
    axes.set_ylabel("video top-1 (%)")
    axes.set_ylim(0, 105)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False, ncol=1)
    return svg_of(plt, figure)


def svg_of(plt: Any, figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()
