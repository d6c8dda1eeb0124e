"""Back-office pages of wallets, merchants and merchant members: freezes, seizure and
unfreeze requests, KYC tiers, device keys and API logins, all through the services."""

from django import forms
from django.contrib import admin

from bank import services as bank_services
from bank.admin.common import FreezeActionsMixin, ReadOnlyAdmin, ReasonForm, RoleActionsMixin, action_with_form
from bank.services.api_tokens import REVOKE_PERMISSION as REVOKE_API_TOKENS
from voucher import services
from voucher.admin.devices import DeviceKeysAdminMixin
from voucher.models import KycTier, Merchant, MerchantMember, Wallet


class SeizureForm(ReasonForm):
    order_reference = forms.CharField(max_length=100, help_text="The court order's reference number.")


class KycTierForm(ReasonForm):
    kyc_tier = forms.ChoiceField(choices=KycTier.choices)


@admin.register(Wallet)
class WalletAdmin(FreezeActionsMixin, ReadOnlyAdmin):
    list_display = ["id", "owner", "kyc_tier", "status", "created_at"]
    list_filter = ["kyc_tier", "status"]
    search_fields = ["owner__external_ref"]
    list_select_related = ["owner"]
    actions = ["freeze", "request_unfreeze", "request_seizure", "change_kyc_tier"]
    action_permissions = {
        "freeze": "voucher.freeze_wallet",
        "seize": "voucher.seize_wallet",
        "kyc": "voucher.change_kyc_tier",
    }

    freeze_title = "Freeze wallets"

    def freeze_one(self, request, wallet, reason: str):
        services.set_wallet_status(actor=request.user, wallet=wallet, status=Wallet.Status.FROZEN, reason=reason)

    def request_unfreeze_one(self, request, wallet, reason: str):
        services.request_unfreeze(actor=request.user, target=wallet, reason=reason)

    @admin.action(description="Request seizure under a court order (needs two approvers)", permissions=["seize"])
    def request_seizure(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Request seizure",
            done="seizure requested",
            form_class=SeizureForm,
            call=lambda w, data: services.request_seizure(
                actor=request.user, wallet=w, order_reference=data["order_reference"], reason=data["reason"]
            ),
        )

    @admin.action(description="Change KYC tier", permissions=["kyc"])
    def change_kyc_tier(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Change KYC tier",
            done="KYC tier changed",
            form_class=KycTierForm,
            call=lambda w, data: services.set_kyc_tier(
                actor=request.user, wallet=w, kyc_tier=data["kyc_tier"], reason=data["reason"]
            ),
        )


@admin.register(Merchant)
class MerchantAdmin(DeviceKeysAdminMixin, FreezeActionsMixin, ReadOnlyAdmin):
    list_display = ["name", "business_registration_number", "category", "district", "annual_revenue", "status"]
    list_filter = ["category", "district", "status"]
    search_fields = ["name", "business_registration_number"]
    actions = ["freeze", "request_unfreeze"]
    action_permissions = {"freeze": "voucher.freeze_merchant"}
    # The merchant's page also lists its device keys, to revoke one and to issue an enrollment code.
    change_form_template = "admin/voucher/merchant/change_form.html"
    change_url_name = "admin:voucher_merchant_change"

    freeze_title = "Freeze merchants"

    def device_party(self, merchant):
        return merchant.party

    def get_urls(self):
        return self.device_urls() + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        merchant = self.get_object(request, object_id)
        if merchant is not None and self.has_view_permission(request, merchant):
            extra_context = {**(extra_context or {}), **self.device_context(request, merchant)}
        return super().change_view(request, object_id, form_url, extra_context)

    def freeze_one(self, request, merchant, reason: str):
        services.set_merchant_status(
            actor=request.user, merchant=merchant, status=Merchant.Status.FROZEN, reason=reason
        )

    def request_unfreeze_one(self, request, merchant, reason: str):
        services.request_unfreeze(actor=request.user, target=merchant, reason=reason)


@admin.register(MerchantMember)
class MerchantMemberAdmin(RoleActionsMixin, ReadOnlyAdmin):
    """Owners and clerks (added by the service add_merchant_member). A teller logs a
    member's API logins out (a till phone lost or a clerk gone), with a reason, audited."""

    list_display = ["user", "merchant", "role", "created_at"]
    list_select_related = ["user", "merchant"]
    action_permissions = {"revoke_tokens": REVOKE_API_TOKENS}
    actions = ["revoke_tokens"]

    @admin.action(description="Log out every API login", permissions=["revoke_tokens"])
    def revoke_tokens(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset.select_related("user"),
            title="Log out every API login of the selected members",
            done="Members logged out",
            call=lambda member, data: bank_services.revoke_api_tokens_of(
                actor=request.user, user=member.user, reason=data["reason"]
            ),
        )
