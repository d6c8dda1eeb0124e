"""Pages of the merchant portal: login, dashboard, payments and refunds, payment QR,
and the merchant's settlement account. Settlements are in settlement_views.

A view parses input with a form, calls one service or selector, and renders.
A service's typed error is shown on the page with its code and a status from its own
(bank.http.render); nothing is written.
"""

import io

import segno
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bank.errors import BankError
from bank.http.render import error_message, error_response, page_status
from voucher import selectors, services
from voucher.clock import seoul_today
from voucher.portal import charts
from voucher.portal.access import is_owner, member_of, member_required
from voucher.portal.forms import (
    PaymentFilterForm,
    PaymentRequestForm,
    RefundForm,
    SettlementAccountForm,
    one_time_key,
)
from voucher.portal.money import won

PAGE_SIZE = 25


def login_view(request):
    """django-axes counts the failures (settings: "Login lockout"); a locked pair is
    refused before its password is checked, and gets this page with HTTP 429."""
    if member_of(request.user) is not None:
        return redirect("portal:dashboard")
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST":
        if form.is_valid() and member_of(form.get_user()) is not None:
            login(request, form.get_user())  # a new session key: no session fixation
            return redirect(_safe_next(request) or "portal:dashboard")
        if getattr(request, "axes_locked_out", False):
            return render(
                request, "portal/login.html", {"form": AuthenticationForm(request), "locked": True}, status=429
            )
        if form.is_valid():  # right password, but no merchant behind the login
            form.add_error(None, _("This login does not act for a merchant."))
    return render(request, "portal/login.html", {"form": form, "locked": False})


def _safe_next(request) -> str:
    """The page to go to after login, if it is on this site (never an open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return ""


@require_POST
def logout_view(request):
    logout(request)
    return redirect("portal:login")


@member_required
def dashboard(request):
    merchant = request.member.merchant
    today = seoul_today()
    sales = selectors.daily_sales(merchant, last_day=today)
    chart = charts.bar_chart(
        sales,
        title_for=lambda s: (
            _("%(day)s: %(count)s payments, %(total)s")
            % {"day": s.day.isoformat(), "count": s.count, "total": won(s.total)}
        ),
    )
    context = {
        "today": today,
        "sales_today": sales[-1],
        "refunds_today": selectors.refunds_on(merchant, today),
        "estimate": selectors.estimate_next_settlement(merchant),
        "chart": chart,
        "chart_total": sum(s.total for s in sales),
        "chart_count": sum(s.count for s in sales),
        "top_value": won(chart["top_value"]),
    }
    return render(request, "portal/dashboard.html", context)


@member_required
def payment_list(request):
    merchant = request.member.merchant
    form = PaymentFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    payments = selectors.payments_for_portal(
        merchant, since=filters.get("since"), until=filters.get("until"), reference=filters.get("q", "")
    )
    page = Paginator(payments, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "portal/payments.html", {"form": form, "page": page, "query": query.urlencode()})


def _payment_or_404(request, payment_id: int):
    payment = selectors.payment_for_portal(request.member.merchant, payment_id)
    if payment is None:
        raise Http404("No such payment.")
    return payment


@member_required
def payment_detail(request, payment_id: int):
    payment = _payment_or_404(request, payment_id)
    return render(request, "portal/payment_detail.html", {"payment": payment})


@member_required
def refund(request, payment_id: int):
    """Two steps: the amount, then a confirmation page; the confirmation posts the
    one-time key made with the first page, so a double submit refunds once."""
    payment = _payment_or_404(request, payment_id)
    if request.method != "POST":
        form = RefundForm(initial={"amount": payment.refundable, "key": one_time_key()})
        return render(request, "portal/refund.html", {"payment": payment, "form": form})
    form = RefundForm(request.POST)
    if not form.is_valid():
        return render(request, "portal/refund.html", {"payment": payment, "form": form}, status=400)
    amount, key = form.cleaned_data["amount"], form.cleaned_data["key"]
    if "confirm" not in request.POST:
        return render(request, "portal/refund_confirm.html", {"payment": payment, "amount": amount, "key": key})
    try:
        services.refund_payment(payment=payment, amount=amount, idempotency_key=key, acting_user=request.user)
    except BankError as error:
        return error_response(request, "portal/refund.html", {"payment": payment, "form": form}, error)
    messages.success(request, _("Refunded %(amount)s.") % {"amount": won(amount)})
    return redirect("portal:payment-detail", payment_id=payment.pk)


@member_required
def payment_requests(request):
    merchant = request.member.merchant
    form = PaymentRequestForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            made = services.create_portal_payment_request(
                member=request.member, amount=form.cleaned_data["amount"], reference=form.cleaned_data["reference"]
            )
        except BankError as error:
            form.add_error(None, error_message(error))
            status = page_status(error)
        else:
            return redirect("portal:qr-detail", request_id=made.pk)
    elif request.method == "POST":
        status = 400
    recent = selectors.payment_requests_for_portal(merchant)[:10]
    return render(request, "portal/qr.html", {"form": form, "recent": recent, "now": timezone.now()}, status=status)


@member_required
def payment_request_detail(request, request_id: int):
    payment_request = get_object_or_404(selectors.payment_requests_for_portal(request.member.merchant), pk=request_id)
    payload = services.request_payload(payment_request)
    context = {
        "payment_request": payment_request,
        "payload": payload,
        "is_expired": payment_request.expires_at <= timezone.now(),
    }
    return render(request, "portal/qr_detail.html", context)


@member_required
def payment_request_svg(request, request_id: int):
    payment_request = get_object_or_404(selectors.payment_requests_for_portal(request.member.merchant), pk=request_id)
    buffer = io.BytesIO()
    segno.make(services.request_payload(payment_request), error="m").save(buffer, kind="svg", scale=6, border=4)
    return HttpResponse(buffer.getvalue(), content_type="image/svg+xml")


@member_required
def account(request):
    member = request.member
    merchant = member.merchant
    form = SettlementAccountForm(
        request.POST or None, merchant=merchant, initial={"account": merchant.settlement_account_id}
    )
    status = 200
    if request.method == "POST":
        if not is_owner(member):
            status = 403
            form.add_error(None, _("Only the merchant's owner may change the settlement account."))
        elif form.is_valid():
            try:
                services.change_settlement_account(
                    actor=request.user, merchant=merchant, account=form.cleaned_data["account"]
                )
            except BankError as error:
                form.add_error(None, error_message(error))
                status = page_status(error)
            else:
                messages.success(request, _("The settlement account was changed."))
                return redirect("portal:account")
        else:
            status = 400
    return render(
        request,
        "portal/account.html",
        {"form": form, "merchant": merchant, "is_owner": is_owner(member)},
        status=status,
    )
