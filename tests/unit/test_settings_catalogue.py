"""docs/settings.md is the one list of the platform's environment variables: generated from
taxi_platform/settings.py, and every variable the code reads is in it."""

import re
from pathlib import Path

from taxi_platform.settings import INTERNAL_VARIABLES, VARIABLES, settings_markdown

ROOT = Path(__file__).resolve().parents[2]
# libpq's own variables are documented under TAXI_PG_DSN.
LIBPQ = {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"}
READ = re.compile(r'(?:environ(?:\.get)?\(|getenv\(|env\.get\(|environ\[|EnvVar\()\s*"([A-Z][A-Z0-9_]+)"')


def test_docs_settings_page_is_the_generated_catalogue():
    page = (ROOT / "docs" / "settings.md").read_text()
    assert page.strip() == settings_markdown().strip(), "docs/settings.md is stale: run `make docs`"


def test_every_environment_variable_the_code_reads_is_catalogued():
    read = {name for path in (ROOT / "taxi_platform").rglob("*.py")
            for name in READ.findall(path.read_text())}
    assert read, "the pattern no longer finds the code's environment reads"
    catalogued = {v.name for v in VARIABLES}
    assert read - catalogued - INTERNAL_VARIABLES - LIBPQ == set()


def test_every_catalogued_variable_is_read_somewhere():
    # Read by the Google client libraries themselves, not by our code.
    by_libraries = {"GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"}
    settings = (ROOT / "taxi_platform" / "settings.py").read_text()
    catalogue = re.search(r"^VARIABLES: .*?^\]$", settings, re.DOTALL | re.MULTILINE).group(0)
    code = settings.replace(catalogue, "") + "\n".join(
        p.read_text() for p in (ROOT / "taxi_platform").rglob("*.py") if p.name != "settings.py")
    unread = [v.name for v in VARIABLES if v.name not in by_libraries and v.name not in code]
    assert unread == []
