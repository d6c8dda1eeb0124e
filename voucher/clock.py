"""Business days of the token are Busan's: a lot is valid through a day in
Asia/Seoul and caps count Seoul months, whatever the server's TIME_ZONE."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

SEOUL = ZoneInfo("Asia/Seoul")


def seoul_today(now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), timezone=SEOUL)


def month_start(day: date) -> date:
    return day.replace(day=1)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The aware instants where a Seoul day starts and the next one starts."""
    start = datetime.combine(day, time.min, tzinfo=SEOUL)
    return start, start + timedelta(days=1)
