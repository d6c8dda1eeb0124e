"""How the portal writes an amount of won, in the reader's language."""

from django.utils.translation import gettext as _


def won(amount: int | None) -> str:
    return _("%(amount)s won") % {"amount": f"{amount or 0:,}"}
