"""The back office's kit every app's admin builds on: read-only pages, staff actions
that ask for a reason on an intermediate page and show a refusal with its code,
and permission-mapped actions. It registers nothing."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from bank.errors import BankError
from bank.http.render import error_message
from bank.models import MAX_AMOUNT


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- staff actions with a reason -----------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


def form_refusal(form: forms.Form) -> str:
    """A form's errors as one admin message, with the code a service's refusal would carry."""
    fields = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
    return _("Nothing done: invalid_request (%(fields)s)") % {"fields": fields}


def action_with_form(modeladmin, request, queryset, *, title: str, done: str, call, form_class=ReasonForm):
    """An admin action that first shows `form_class` (a reason and any other
    fields), then runs `call(obj, cleaned_data)` per selected row through a
    service. A refusal is shown with its error code; the other rows go on. A
    call that returns False was not done (it showed its own message)."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        count = 0
        for obj in queryset:
            try:
                if call(obj, form.cleaned_data) is not False:
                    count += 1
            except BankError as error:
                modeladmin.message_user(request, f"{obj}: {error_message(error)}", messages.ERROR)
        if count:
            modeladmin.message_user(request, f"{done}: {count}", messages.SUCCESS)
        return None  # back to the list, with the messages
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "queryset": queryset,
        "action": request.POST.get("action", ""),
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/bank/action_form.html", context)


def run_each(modeladmin, request, queryset, verb: str, call) -> None:
    """An admin action with no form: `call(obj)` per selected row through a service;
    a refusal is shown with its code, the rest go on."""
    done = 0
    for obj in queryset:
        try:
            call(obj)
            done += 1
        except BankError as error:
            modeladmin.message_user(request, f"{obj}: {error_message(error)}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb}: {done}", messages.SUCCESS)


def amount_field(**kwargs) -> forms.IntegerField:
    """Whole won, bounded to what a ledger line may carry (bank.models.MAX_AMOUNT)."""
    return forms.IntegerField(min_value=1, max_value=MAX_AMOUNT, **kwargs)


class RoleActionsMixin:
    """`@admin.action(permissions=["x"])` asks has_x_permission; each maps to one role permission."""

    action_permissions: dict[str, str] = {}

    def changelist_view(self, request, extra_context=None):
        # Django would 500 on a crafted selection that is not a list of ids; answer it plainly instead.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if request.method == "POST" else []
        # ASCII digits within a bigint: "²" passes isdigit() and 10**30 overflows the id column.
        if any(not (value.isascii() and value.isdigit() and len(value) <= 18) for value in selected):
            self.message_user(
                request, "Nothing done: invalid_selection (the selected rows must be ids).", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)

    def __getattr__(self, name):
        if name.startswith("has_") and name.endswith("_permission"):
            key = name[len("has_") : -len("_permission")]
            if key in self.action_permissions:
                return lambda request, obj=None: request.user.has_perm(self.action_permissions[key])
        raise AttributeError(name)


class FreezeActionsMixin(RoleActionsMixin):
    """Freeze at once with a reason; unfreeze only by a request an approver signs off.
    Subclasses say how for their kind of row; `action_permissions` maps "freeze"."""

    freeze_title = "Freeze"

    def freeze_one(self, request, obj, reason: str):
        raise NotImplementedError

    def request_unfreeze_one(self, request, obj, reason: str):
        raise NotImplementedError

    @admin.action(description="Freeze (now, with a reason)", permissions=["freeze"])
    def freeze(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title=self.freeze_title,
            done="frozen",
            call=lambda obj, data: self.freeze_one(request, obj, data["reason"]),
        )

    @admin.action(description="Request unfreeze (needs an approver)", permissions=["freeze"])
    def request_unfreeze(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            title="Request unfreeze",
            done="unfreeze requested",
            call=lambda obj, data: self.request_unfreeze_one(request, obj, data["reason"]),
        )
