"""Demo seeding for ``telehub demo`` / ``make run``: an empty database gets the sandbox fixtures."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sqlalchemy import func, select

from fhir_gateway.settings import Settings


def demo_fixture_dir() -> Path | None:
    spec = importlib.util.find_spec("sandbox_fixtures")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "demo"
    return path if path.is_dir() else None


def seed_demo_data(settings: Settings) -> int:
    """Import the demo Bundles when the database holds no Patient yet; returns resources loaded."""
    from fhir_gateway.app import build_services
    from fhir_gateway.importer.run import run_import
    from fhir_gateway.storage.tables import resource

    services = build_services(settings)
    with services.repository.transaction() as conn:
        patients = conn.execute(select(func.count()).select_from(resource).where(
            resource.c.rtype == "Patient")).scalar_one()
    fixtures = demo_fixture_dir()
    if patients or fixtures is None:
        return 0
    report = run_import(settings, [fixtures], on_error="skip", restart=True, progress=False, services=services)
    return report.resources
