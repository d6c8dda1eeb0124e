"""Settlement pages of the merchant portal: the merchant's settlement lines (one
per batch), each line's CSV and printable statement, and instant settlement
(owner only, with a confirmation step and a one-time key).

The settlement itself is voucher.services.settlement; these pages only read
its lines for the member's own merchant and ask it to settle now.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from bank.errors import BankError
from bank.http.render import error_message, page_status
from voucher import selectors, services
from voucher.portal.access import is_owner, member_required
from voucher.portal.forms import InstantSettlementForm, one_time_key
from voucher.portal.money import won

PAGE_SIZE = 25


@member_required
def settlement_list(request):
    merchant = request.member.merchant
    lines = selectors.settlement_lines_for(merchant)  # with each line's batch
    page = Paginator(lines, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "is_owner": is_owner(request.member)}
    return render(request, "portal/settlements.html", context)


@member_required
def settlement_csv(request, line_id: int):
    line = get_object_or_404(selectors.settlement_lines_for(request.member.merchant), pk=line_id)
    body = selectors.settlement_statement_csv(line, merchant=request.member.merchant)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="settlement-{line.period.isoformat()}-{line.pk}.csv"'
    return response


@member_required
def settlement_statement(request, line_id: int):
    line = get_object_or_404(selectors.settlement_lines_for(request.member.merchant), pk=line_id)
    context = selectors.settlement_statement_context(line)
    return render(request, "voucher/settlement_statement.html", context)


@member_required(owner_only=True)
def instant_settlement(request):
    """Settle what the merchant holds now. Clerks get 403 (access.member_required)."""
    merchant = request.member.merchant
    estimate = selectors.estimate_next_settlement(merchant)
    if request.method != "POST":
        form = InstantSettlementForm(initial={"key": one_time_key()})
        return render(request, "portal/instant_settlement.html", {"form": form, "estimate": estimate})
    form = InstantSettlementForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            line = services.settle_merchant_now(
                merchant=merchant, acting_user=request.user, idempotency_key=form.cleaned_data["key"]
            )
        except BankError as error:
            form.add_error(None, error_message(error))
            status = page_status(error)
        else:
            if line.status == line.Status.PAID:
                messages.success(request, _("Settled: %(net)s paid to your account.") % {"net": won(line.net)})
            else:
                messages.warning(request, _("The settlement was held back: %(reason)s") % {"reason": line.held_reason})
            return redirect("portal:settlements")
    return render(request, "portal/instant_settlement.html", {"form": form, "estimate": estimate}, status=status)
