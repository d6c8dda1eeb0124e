"""Back-office page of ledger verification: start verify_ledger as a Celery task,
watch its progress and verdict, and see the latest attested block with the
validators that signed it. Runs change only through bank.services."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from bank import services
from bank.admin.common import ReadOnlyAdmin
from bank.errors import BankError
from bank.http.render import error_message
from bank.models import Block, BlockAttestation, VerificationRun


def latest_block():
    """The newest sealed block and its attestations (validator fetched), or (None, [])."""
    block = Block.objects.order_by("-height").first()
    if block is None:
        return None, []
    attestations = BlockAttestation.objects.filter(block=block).select_related("validator").order_by("validator__name")
    return block, list(attestations)


@admin.register(VerificationRun)
class VerificationRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "progress", "started_by", "started_at", "finished_at", "first_failure"]
    list_filter = ["status"]
    list_select_related = ["started_by"]
    change_list_template = "admin/bank/verificationrun/change_list.html"

    @admin.display(description="progress")
    def progress(self, run):
        return f"{run.done:,} / {run.total:,} entries ({run.percent}%)"

    def get_urls(self):
        start = self.admin_site.admin_view(self.start_view)
        return [path("start/", start, name="bank_verificationrun_start")] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        block, attestations = latest_block()
        extra_context = {
            **(extra_context or {}),
            "latest_block": block,
            "attestations": attestations,
            "can_start": request.user.has_perm("bank.start_verificationrun"),
            "any_running": VerificationRun.objects.filter(
                status__in=[VerificationRun.Status.QUEUED, VerificationRun.Status.RUNNING]
            ).exists(),
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = self.get_object(request, object_id)
        if run is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Ledger verification #{run.pk}",
            "run": run,
        }
        return TemplateResponse(request, "admin/bank/verificationrun/watch.html", context)

    def start_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("bank.start_verificationrun"):
            raise PermissionDenied
        try:
            run = services.start_verification_run(actor=request.user)
        except BankError as error:
            self.message_user(request, error_message(error), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:bank_verificationrun_changelist"))
        self.message_user(request, f"Verification #{run.pk} is {run.status}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:bank_verificationrun_change", args=[run.pk]))
