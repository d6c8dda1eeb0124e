"""Device keys in the back office, for a customer (the customer view) and a
merchant (its admin page): a teller revokes a lost phone's key, and issues the
one-time enrollment code a holder without a usable key needs for a new one,
after checking the holder's identity. Inputs are Django forms; every change
goes through a bank service, which audits it."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from bank import services as bank_services
from bank.errors import BankError
from bank.http.render import error_message
from bank.models import DeviceKey

REVOKE_PERMISSION = "voucher.revoke_device_key"
ISSUE_CODE_PERMISSION = "bank.issue_enrollment_code"


class RevokeDeviceForm(forms.Form):
    device = forms.ModelChoiceField(queryset=DeviceKey.objects.none())
    reason = forms.CharField(max_length=300, strip=True)

    def __init__(self, *args, party, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this holder's active keys: another customer's key or a made-up id is a form error.
        self.fields["device"].queryset = DeviceKey.objects.filter(party=party, status=DeviceKey.Status.ACTIVE)
        self.fields["device"].error_messages["invalid_choice"] = gettext_lazy("No such active device of this holder.")


class EnrollmentCodeForm(forms.Form):
    identity_checked = forms.BooleanField(
        label=gettext_lazy("I checked the holder's identity document in person"),
        error_messages={"required": gettext_lazy("Check the holder's identity before issuing a code.")},
    )
    reason = forms.CharField(
        max_length=300,
        strip=True,
        label=gettext_lazy("Reason"),
        help_text=gettext_lazy("How the identity was checked and why a new device is enrolled."),
    )


def _form_errors(form) -> str:
    return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())


class DeviceKeysAdminMixin:
    """For a ModelAdmin whose rows hold device keys. Subclasses say whose:
    device_party(obj) and change_url_name (the page to go back to)."""

    change_url_name = ""

    def device_party(self, obj):
        raise NotImplementedError

    def device_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/revoke-device/", view(self.revoke_device_view), name=self._url_name("revoke_device")),
            path(
                "<int:pk>/enrollment-code/",
                view(never_cache(self.enrollment_code_view)),
                name=self._url_name("enrollment_code"),
            ),
        ]

    def _url_name(self, action: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{action}"

    def device_context(self, request, obj) -> dict:
        return {
            "devices": DeviceKey.objects.filter(party=self.device_party(obj)).order_by("status", "-created_at"),
            "can_revoke": request.user.has_perm(REVOKE_PERMISSION),
            "can_issue_code": request.user.has_perm(ISSUE_CODE_PERMISSION),
            "revoke_url": reverse(f"admin:{self._url_name('revoke_device')}", args=[obj.pk]),
            "enrollment_code_url": reverse(f"admin:{self._url_name('enrollment_code')}", args=[obj.pk]),
            "enrollment_code_form": EnrollmentCodeForm(),
        }

    def _holder(self, request, pk, permission):
        if request.method != "POST":
            return None, HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(permission):
            raise PermissionDenied
        obj = self.get_object(request, str(pk))
        if obj is None:
            return None, self._get_obj_does_not_exist_redirect(request, self.opts, str(pk))
        return obj, None

    def _back(self, pk) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse(self.change_url_name, args=[pk]))

    def revoke_device_view(self, request, pk):
        obj, answer = self._holder(request, pk, REVOKE_PERMISSION)
        if answer is not None:
            return answer
        form = RevokeDeviceForm(request.POST, party=self.device_party(obj))
        if not form.is_valid():
            self.message_user(request, _("Nothing revoked: %s") % _form_errors(form), messages.ERROR)
            return self._back(pk)
        device = form.cleaned_data["device"]
        bank_services.revoke_device_key(actor=request.user, device=device, reason=form.cleaned_data["reason"])
        self.message_user(request, _("Device %s revoked.") % (device.label or device.did), messages.SUCCESS)
        return self._back(pk)

    def enrollment_code_view(self, request, pk):
        obj, answer = self._holder(request, pk, ISSUE_CODE_PERMISSION)
        if answer is not None:
            return answer
        form = EnrollmentCodeForm(request.POST)
        if not form.is_valid():
            self.message_user(request, _("No code issued: %s") % _form_errors(form), messages.ERROR)
            return self._back(pk)
        try:
            code, shown = bank_services.issue_enrollment_code(
                actor=request.user, party=self.device_party(obj), reason=form.cleaned_data["reason"]
            )
        except BankError as error:
            self.message_user(request, error_message(error), messages.ERROR)
            return self._back(pk)
        # Shown on this one page and never again: only its digest is stored.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Device enrollment code"),
            "holder": obj,
            "code": code,
            "shown": shown,
            "back_url": reverse(self.change_url_name, args=[pk]),
        }
        return TemplateResponse(request, "admin/voucher/enrollment_code.html", context)
