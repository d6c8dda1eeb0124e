"""A server-rendered SVG bar chart of daily sales: no JavaScript, no CDN, and it
prints. Pure functions from figures to drawing coordinates."""

from dataclasses import dataclass

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 20, 12, 28  # margins leave room for the axis labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    center: float  # where the day's label is centred
    label: str  # the day, shown under every fifth bar
    title: str  # the tooltip: day, count, total
    show_label: bool


def bar_chart(sales, *, title_for) -> dict:
    """Bars for a list of DaySales; `title_for(day_sales)` makes each tooltip."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = max((s.total for s in sales), default=0) or 1
    slot = plot_width / max(len(sales), 1)
    bars = []
    for index, day_sales in enumerate(sales):
        height = plot_height * day_sales.total / top_value
        bars.append(
            Bar(
                x=round(LEFT + index * slot + slot * 0.15, 1),
                y=round(TOP + plot_height - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                center=round(LEFT + index * slot + slot / 2, 1),
                label=day_sales.day.strftime("%m-%d"),
                title=title_for(day_sales),
                show_label=index % 5 == 0 or index == len(sales) - 1,
            )
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "plot_bottom": TOP + plot_height,
        "plot_right": WIDTH - RIGHT,
        "top": TOP,
        "top_value": top_value if any(s.total for s in sales) else 0,
        "label_y": HEIGHT - 8,
        "bars": bars,
    }
