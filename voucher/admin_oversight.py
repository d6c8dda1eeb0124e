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

from bank import services as bank_services
from bank.admin import ReadOnlyAdmin, ReasonForm, form_refusal
from bank.errors import BankError
from bank.models import DeviceKey
from voucher import selectors, services
from voucher.clock import seoul_today
from voucher.limits import limits_on
from voucher.models import CustomerWallet, FraudFlag, KycTier, Lot, Reconciliation
from voucher.selectors_reconciliation import reconciliation

RECONCILIATION_PERMISSION = "bank.view_account"
HISTORY_PAGE_SIZE = 25


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


@admin.register(CustomerWallet)
class CustomerWalletAdmin(ReadOnlyAdmin):
    list_display = ["id", "owner", "owner_ref", "kyc_tier", "status", "created_at"]
    list_filter = ["kyc_tier", "status"]
    search_fields = ["owner__external_ref", "owner__display_name", "user__username", "user__email"]
    list_select_related = ["owner"]

    @admin.display(description="party ref", ordering="owner__external_ref")
    def owner_ref(self, wallet):
        return wallet.owner.external_ref

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/revoke-device/", view(self.revoke_device_view), name="voucher_customerwallet_revoke_device"),
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
            "devices": DeviceKey.objects.filter(party=wallet.owner).order_by("status", "-created_at"),
            "kyc_tiers": KycTier.choices,
            "can_change_kyc": request.user.has_perm("voucher.change_kyc_tier"),
            "can_revoke": request.user.has_perm("voucher.revoke_device_key"),
        }
        return TemplateResponse(request, "admin/voucher/customerwallet/customer.html", context)

    def revoke_device_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("voucher.revoke_device_key"):
            raise PermissionDenied
        wallet = self.get_object(request, str(pk))
        if wallet is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(pk))
        reason = request.POST.get("reason", "").strip()
        device = DeviceKey.objects.filter(party=wallet.owner, pk=request.POST.get("device") or None).first()
        if device is None:
            self.message_user(request, "No such device of this customer.", messages.ERROR)
        elif not reason:
            self.message_user(request, "A reason is required to revoke a device.", messages.ERROR)
        else:
            bank_services.revoke_device_key(actor=request.user, device=device, reason=reason[:300])
            self.message_user(request, f"Device {device.label or device.did} revoked.", messages.SUCCESS)
        return _redirect_back(pk)

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
            self.message_user(request, f"{error.code}: {error}", messages.ERROR)
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
            self.message_user(request, f"{error.code}: {error}", messages.ERROR)
        else:
            self.message_user(request, f"Flag #{flag.pk}: {decision} done.", messages.SUCCESS)
        return back
