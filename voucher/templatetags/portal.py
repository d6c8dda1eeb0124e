"""Template filters of the merchant portal."""

from django import template

from voucher.portal.money import won as won_text

register = template.Library()


@register.filter
def won(amount) -> str:
    """12000 -> "12,000 won" ("12,000원" in Korean)."""
    return won_text(amount)
