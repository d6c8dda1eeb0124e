"""voucher.selectors and voucher.rules sit below voucher.services: services import
them, never the other way round, so no import order is needed to break a cycle."""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("bank", "voucher")
BELOW_SERVICES = ("voucher.selectors", "voucher.rules")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PROJECT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imported(module: str, *, module_level_only: bool) -> set[str]:
    """The project modules `module` imports (and the packages they are in, whose __init__ runs too)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = ast.walk(tree)
    if module_level_only:  # what runs when the module is imported (imports in a function run later)
        nodes = (n for top in tree.body if not isinstance(top, ast.FunctionDef | ast.ClassDef) for n in ast.walk(top))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from voucher import services`
    found = set()
    for name in names:
        parts = name.split(".")
        found.update(".".join(parts[:n]) for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in MODULES)
    return found - {module}


def _is_services(module: str) -> bool:
    return module == "voucher.services" or module.startswith("voucher.services.")


def _below_services() -> list[str]:
    return sorted(m for m in MODULES if any(m == top or m.startswith(top + ".") for top in BELOW_SERVICES))


def test_no_selector_or_rule_module_imports_the_services():
    # given every module of voucher.selectors and voucher.rules
    # when their imports are read, in functions too
    offending = {m: sorted(filter(_is_services, _imported(m, module_level_only=False))) for m in _below_services()}
    # then none names voucher.services
    assert {m: names for m, names in offending.items() if names} == {}


def test_importing_the_selectors_never_reaches_the_services_through_another_module():
    # given what importing voucher.selectors (and voucher.rules) runs, module by module
    seen, path_to = set(), {}
    todo = [(m, [m]) for m in _below_services()]
    while todo:
        module, path = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path_to[module] = path
        todo.extend((imported, [*path, imported]) for imported in _imported(module, module_level_only=True))
    # then voucher.services is not among it (e.g. by way of voucher.verification)
    assert [path_to[m] for m in sorted(seen) if _is_services(m)] == []


def test_the_selectors_import_first_in_a_fresh_interpreter():
    # given a fresh Python in which voucher.selectors is imported before anything
    # else of ours has imported voucher.services (the first app's ready() runs first
    # of all, before the admin's autodiscovery or voucher's own ready())
    script = """
import sys
import django
from django.apps import AppConfig
from django.conf import settings

first = type(AppConfig.create(settings.INSTALLED_APPS[0]))
original_ready = first.ready

def ready(self):
    assert "voucher.services" not in sys.modules, "voucher.services was imported before the apps were ready"
    import voucher.selectors
    assert "voucher.services" not in sys.modules, "importing voucher.selectors imported voucher.services"
    original_ready(self)

first.ready = ready
django.setup()
import voucher.services
from voucher.selectors import wallet_balance
from voucher.services import settle_day
print("imported", wallet_balance.__module__, settle_day.__module__)
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    # when it runs
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    # then both import, the selectors first
    assert done.returncode == 0, done.stderr
    assert "imported voucher.selectors.wallets voucher.services.settlement.batch" in done.stdout
