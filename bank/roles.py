"""Staff roles: the role names, the bank's own permissions per role, and the
mechanism that makes each role's Django group hold exactly its permissions
("app_label.codename"): the bank's below plus each app's own, from the app's
`roles` module (STAFF_PERMISSIONS; voucher/roles.py). `manage.py setup_roles`
(and load_demo) applies it; running it again changes nothing. A codename whose
model is not installed yet is skipped, so a table can name it before it exists.

Superusers are for setup only; day-to-day staff hold exactly one role.
"""

from importlib import import_module

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.utils.module_loading import module_has_submodule

_VIEW_LEDGER = [
    "bank.view_party",
    "bank.view_account",
    "bank.view_journalentry",
    "bank.view_posting",
    "bank.view_hold",
    "bank.view_block",
    "bank.view_validatorkey",
    "bank.view_devicekey",
]
_VIEW_CONTROLS = ["bank.view_approvalrequest", "bank.view_minterallowance", "bank.view_controlstate"]
_VIEW_AUDIT = ["bank.view_auditevent", "bank.export_audit"]
# The back office's own pages (the bank's part of them).
_VIEW_OVERSIGHT = [
    "bank.view_verificationrun",
    "axes.view_accessattempt",  # who was locked out, from where: usernames and addresses, no passwords
    "auth.view_group",  # who holds which role: the groups and their permissions, no logins
]

# Models whose rows are credentials or lead to them: no role may read them, whatever
# the tables say (setup_roles refuses). API tokens (a digest, but still the
# key to the lookup), logins (password hashes), sessions (a session key is a login).
# Validator and device keys hold public keys only; secrets live in files and settings.
CREDENTIAL_MODELS = {"auth.user", "bank.apitoken", "sessions.session"}

# Every role, with the bank's own permissions (and those of the apps the bank
# configures: auth, axes). Each other app adds its own in its `roles` module.
ROLES: dict[str, list[str]] = {
    # Customers, their KYC tier and deposits; freezes a wallet on the spot and may ask for its unfreeze.
    "teller": _VIEW_LEDGER
    + [
        # a holder with no usable device key gets a one-time code, after an identity check at the counter
        "bank.issue_enrollment_code",
        "bank.revoke_api_token",
        "bank.record_cash",
        # login lockouts (django-axes): see who is locked out, lift it after checking who asks
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ],
    # Makes and edits voucher programs and issues grants by hand (large ones go to an approver);
    # all its permissions are the token app's (voucher/roles.py).
    "program_manager": [],
    # The checker: approves programs and every maker-checker request (large mints, adjustments,
    # unfreezes, seizures, allowance raises); also the compliance desk that freezes and files them.
    "approver": _VIEW_LEDGER
    + _VIEW_CONTROLS
    + [
        "bank.approve_request",
        "bank.freeze_account",
        "bank.adjust_ledger",
        "bank.raise_allowance",
        # the compliance desk watches the books
        "bank.view_verificationrun",
        "bank.start_verificationrun",
    ],
    # Settlement batches: see and run them, and the books they must keep balanced.
    "settlement_operator": ["bank.view_account", "bank.view_journalentry", "bank.view_verificationrun"],
    # The incident desk's switch: pause and resume payments and transfers.
    "pauser": _VIEW_CONTROLS + ["bank.pause_payments", "bank.view_account"],
    # Reads every record of the ledger, the token, the controls and the audit log, and
    # nothing else: explicit lists here and in each app's roles module, so a model added
    # later (or a credential) is not readable until someone decides it should be.
    "auditor": _VIEW_LEDGER + _VIEW_CONTROLS + _VIEW_AUDIT + _VIEW_OVERSIGHT,
}

# The hook: an installed app's `<app>/roles.py` may define this name, a dict of role ->
# that app's permissions ("app_label.codename") the role holds. Only roles named in
# ROLES may appear; setup_roles reads the hook of every installed app each time it runs.
APP_PERMISSIONS_NAME = "STAFF_PERMISSIONS"


def app_permissions() -> dict[str, dict[str, list[str]]]:
    """Each installed app's STAFF_PERMISSIONS (its `roles` module), by app label."""
    tables = {}
    for config in apps.get_app_configs():
        if f"{config.name}.roles" == __name__ or not module_has_submodule(config.module, "roles"):
            continue
        table = getattr(import_module(f"{config.name}.roles"), APP_PERMISSIONS_NAME, None)
        if table is None:
            continue
        unknown = sorted(set(table) - set(ROLES))
        if unknown:
            raise ValueError(f"{config.name}.roles names roles {unknown} that bank.roles.ROLES does not declare.")
        tables[config.label] = table
    return tables


def role_permissions() -> dict[str, list[str]]:
    """The whole table: each role's bank permissions and every app's for it."""
    contributed = app_permissions().values()
    return {
        role: [*names, *(name for table in contributed for name in table.get(role, ()))]
        for role, names in ROLES.items()
    }


def reads_credentials(permission: Permission) -> bool:
    """A permission to see (or edit) the rows of a credential model; acting on them,
    such as bank.revoke_api_token, is not reading them."""
    model = f"{permission.content_type.app_label}.{permission.content_type.model}"
    return model in CREDENTIAL_MODELS and permission.codename.startswith(("view_", "change_", "add_"))


def _permissions(names: list[str]) -> tuple[list[Permission], list[str]]:
    found, missing = [], []
    for name in sorted(set(names)):
        app_label, codename = name.split(".", 1)
        permission = (
            Permission.objects.select_related("content_type")
            .filter(content_type__app_label=app_label, codename=codename)
            .first()
        )
        if permission and reads_credentials(permission):
            raise ValueError(f"{name} reads credentials; no staff role may hold it.")
        (found.append(permission) if permission else missing.append(name))
    return found, missing


def setup_roles() -> dict[str, list[str]]:
    """Make each role's group hold exactly the table's permissions. Returns the
    codenames skipped because their model is not installed."""
    skipped = {}
    for role, names in role_permissions().items():
        permissions, missing = _permissions(names)
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(permissions)
        if missing:
            skipped[role] = missing
    return skipped


def grant_role(user, role: str):
    """Put a staff login in a role's group (setup_roles first, so the group is complete)."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; roles are {sorted(ROLES)}.")
    setup_roles()
    user.groups.add(Group.objects.get(name=role))
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    # Django caches a user's permissions on the object; a fresh lookup sees the new group.
    for cache in ("_perm_cache", "_group_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cache, None)
    return user
