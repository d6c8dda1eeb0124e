"""Who may see a portal page: a logged-in owner or clerk of a merchant.

Every page looks its objects up through the member's own merchant, so another
merchant's id is simply not found (404), never shown and never "forbidden".
Pages are rendered in Asia/Seoul, whatever the server's TIME_ZONE.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from voucher.clock import SEOUL
from voucher.models import MerchantMember


def member_of(user) -> MerchantMember | None:
    if not user.is_authenticated:
        return None
    return MerchantMember.objects.select_related("merchant").filter(user=user).first()


def member_required(view=None, *, owner_only: bool = False):
    """The view gets `request.member`; anyone else goes to the login page,
    a clerk on an owner's page gets 403."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            member = member_of(request.user)
            if member is None:
                return redirect_to_login(request.get_full_path())
            if owner_only and member.role != MerchantMember.Role.OWNER:
                raise PermissionDenied("Only the merchant's owner may do this.")
            request.member = member
            with timezone.override(SEOUL):
                return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def is_owner(member: MerchantMember) -> bool:
    return member.role == MerchantMember.Role.OWNER
