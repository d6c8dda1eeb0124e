"""Forms of the merchant portal: they parse and bound input; services decide the rest."""

import secrets

from django import forms
from django.utils.translation import gettext_lazy as _

from bank.models import MAX_AMOUNT, Account, Currency


def one_time_key() -> str:
    """A fresh key for a money-moving form: a double submit carries the same key, and the service acts once."""
    return "portal:" + secrets.token_hex(16)


class PaymentFilterForm(forms.Form):
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(label=_("Reference"), required=False, max_length=100)

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError(_("The first day must not be after the last."))
        return data


class KeyedForm(forms.Form):
    """A form that moves money carries a one-time key from the page that showed it."""

    key = forms.RegexField(regex=r"^portal:[0-9a-f]{32}$", widget=forms.HiddenInput)


class RefundForm(KeyedForm):
    amount = forms.IntegerField(label=_("Refund amount (won)"), min_value=1, max_value=MAX_AMOUNT)


class InstantSettlementForm(KeyedForm):
    pass


class PaymentRequestForm(forms.Form):
    amount = forms.IntegerField(label=_("Amount (won)"), min_value=1, max_value=MAX_AMOUNT)
    reference = forms.CharField(label=_("Reference"), required=False, max_length=100)


class SettlementAccountForm(forms.Form):
    account = forms.ModelChoiceField(label=_("Settlement account"), queryset=Account.objects.none())

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = Account.objects.filter(
            owner_id=merchant.party_id, currency=Currency.KRW, status=Account.Status.ACTIVE
        ).order_by("pk")
        self.fields["account"].label_from_instance = lambda account: account.code
