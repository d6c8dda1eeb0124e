"""Back-office pages a bank needs to run the token: the reconciliation dashboard,
the customer view (wallet, lots, limits, history, devices, KYC tier) and the
review of fraud flags. Pages read through selectors; every change goes through
a service, which checks the staff member's permission again and audits it."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from bank import services as bank_services
from bank.admin.common import ReadOnlyAdmin, ReasonForm, form_refusal
from bank.errors import BankError
from bank.http.render import error_message
from bank.models import ApiToken
from bank.services.api_tokens import REVOKE_PERMISSION
from voucher import selectors, services
from voucher.admin.devices import DeviceKeysAdminMixin
from voucher.clock import seoul_today
from voucher.limits import limits_on
from voucher.models import CustomerWallet, FraudFlag, KycTier, Lot, Reconciliation
from voucher.selectors.reconciliation import reconciliation

RECONCILIATION_PERMISSION = "bank.view_account"
HISTORY_PAGE_SIZE = 25
API_TOKENS_SHOWN = 20
REVOKE_TOKENS_PERMISSION = REVOKE_PERMISSION


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    """The admin index links here; the "list" is the dashboard."""

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff and request.user.has_perm(RECONCILIATION_PERMISSION)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = reconciliation()
        title = "RECONCILIATION OFF" if not report.is_ok else "Reconciliation"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "report": report,
            "today": seoul_today(),
        }
        return TemplateResponse(request, "admin/voucher/reconciliation/dashboard.html", context)


class KycTierChangeForm(ReasonForm):
    kyc_tier = forms.ChoiceField(choices=KycTier.choices)


class FraudReviewForm(ReasonForm):
    decision = forms.ChoiceField(choices=[("dismiss", "dismiss"), ("freeze", "freeze")])


def _redirect_back(customer_id) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:voucher_customerwallet_change", args=[customer_id]))


class RevokeApiTokensForm(forms.Form):
    reason = forms.CharField(max_length=300, strip=True)


class CustomerApiTokensMixin:
    """The customer view's API logins: listed (when, until when, whether live; never a
    token, of which only the digest is stored, nor that digest), and a teller's
    "log out every API login" with a reason (a lost phone, a leaked token), audited."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.revoke_api_tokens_view)
        return [
            path("<int:pk>/revoke-api-tokens/", view, name="voucher_customerwallet_revoke_api_tokens")
        ] + super().get_urls()

    def api_token_context(self, request, wallet) -> dict:
        tokens = ApiToken.objects.filter(user_id=wallet.user_id).order_by("-created_at")[:API_TOKENS_SHOWN]
        return {
            "api_tokens": tokens if wallet.user_id else [],
            "now": timezone.now(),
            "can_revoke_tokens": request.user.has_perm(REVOKE_TOKENS_PERMISSION),
        }

    def revoke_api_tokens_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(REVOKE_TOKENS_PERMISSION):
            raise PermissionDenied
        wallet = self.get_object(request, str(pk))
        if wallet is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(pk))
        form = RevokeApiTokensForm(request.POST)
        if wallet.user_id is None:
            self.message_user(request, _("This wallet has no login."), messages.ERROR)
        elif not form.is_valid():
            self.message_user(request, _("A reason of 1 to 300 characters is required."), messages.ERROR)
        else:
            try:
                count = bank_services.revoke_api_tokens_of(
                    actor=request.user, user=wallet.user, reason=form.cleaned_data["reason"]
                )
            except BankError as error:
                self.message_user(request, error_message(error), messages.ERROR)
            else:
                self.message_user(request, _("%(count)d API logins logged out.") % {"count": count}, messages.SUCCESS)
        return _redirect_back(pk)


@admin.register(CustomerWallet)
class CustomerWalletAdmin(CustomerApiTokensMixin, DeviceKeysAdminMixin, ReadOnlyAdmin):
    list_display = ["id", "owner", "owner_ref", "kyc_tier", "status", "created_at"]
    list_filter = ["kyc_tier", "status"]
    search_fields = ["owner__external_ref", "owner__display_name", "user__username", "user__email"]
    list_select_related = ["owner"]
    change_url_name = "admin:voucher_customerwallet_change"

    def device_party(self, wallet):
        return wallet.owner

    @admin.display(description="party ref", ordering="owner__external_ref")
    def owner_ref(self, wallet):
        return wallet.owner.external_ref

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            *self.device_urls(),
            path("<int:pk>/kyc-tier/", view(self.kyc_tier_view), name="voucher_customerwallet_kyc_tier"),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        wallet = self.get_object(request, object_id)
        if wallet is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        today = seoul_today()
        limits = limits_on(today)
        history = Paginator(selectors.wallet_history(wallet), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
        for entry in history:
            entry.kind_name = selectors.history_kind(entry)
        lots = (
            Lot.objects.filter(wallet=wallet)
            .filter(Q(status=Lot.Status.ACTIVE) | Q(expired_amount__gt=0))
            .select_related("program", "account")
            .order_by("status", "expires_on", "pk")
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Customer: {wallet.owner}",
            "wallet": wallet,
            "balance": selectors.wallet_balance(wallet),
            "lots": lots,
            "limits": limits,
            "max_balance": limits.max_balance(wallet.kyc_tier),
            "benefits": selectors.wallet_benefits(wallet, today),
            "history": history,
            "kyc_tiers": KycTier.choices,
            "can_change_kyc": request.user.has_perm("voucher.change_kyc_tier"),
            **self.device_context(request, wallet),
            **self.api_token_context(request, wallet),
        }
        return TemplateResponse(request, "admin/voucher/customerwallet/customer.html", context)

    def kyc_tier_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("voucher.change_kyc_tier"):
            raise PermissionDenied
        wallet = self.get_object(request, str(pk))
        if wallet is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(pk))
        form = KycTierChangeForm(request.POST)
        if not form.is_valid():
            self.message_user(request, form_refusal(form), messages.ERROR)
            return _redirect_back(pk)
        try:
            services.set_kyc_tier(
                actor=request.user,
                wallet=wallet,
                kyc_tier=form.cleaned_data["kyc_tier"],
                reason=form.cleaned_data["reason"],
            )
        except BankError as error:
            self.message_user(request, error_message(error), messages.ERROR)
        else:
            self.message_user(request, "KYC tier saved.", messages.SUCCESS)
        return _redirect_back(pk)


@admin.register(FraudFlag)
class FraudFlagAdmin(ReadOnlyAdmin):
    list_display = ["id", "rule", "subject", "period_start", "period_end", "score", "status", "reviewed_by"]
    list_filter = ["status", "rule"]
    search_fields = ["subject", "device_public_key"]
    list_select_related = ["reviewed_by"]
    date_hierarchy = "period_end"

    def get_urls(self):
        review = self.admin_site.admin_view(self.review_view)
        return [path("<int:pk>/review/", review, name="voucher_fraudflag_review")] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        flag = self.get_object(request, object_id)
        if flag is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Fraud flag #{flag.pk}",
            "flag": flag,
            "can_review": request.user.has_perm("voucher.review_fraudflag") and flag.status == FraudFlag.Status.OPEN,
        }
        return TemplateResponse(request, "admin/voucher/fraudflag/review.html", context)

    def review_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("voucher.review_fraudflag"):
            raise PermissionDenied
        flag = self.get_object(request, str(pk))
        if flag is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(pk))
        back = HttpResponseRedirect(reverse("admin:voucher_fraudflag_change", args=[pk]))
        form = FraudReviewForm(request.POST)
        if not form.is_valid():
            self.message_user(request, form_refusal(form), messages.ERROR)
            return back
        decision = form.cleaned_data["decision"]
        review = {"dismiss": services.dismiss_fraud_flag, "freeze": services.freeze_fraud_flag_subject}[decision]
        try:
            review(actor=request.user, flag=flag, reason=form.cleaned_data["reason"])
        except BankError as error:
            self.message_user(request, error_message(error), messages.ERROR)
        else:
            self.message_user(request, f"Flag #{flag.pk}: {decision} done.", messages.SUCCESS)
        return back
