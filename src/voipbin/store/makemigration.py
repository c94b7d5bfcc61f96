"""Regenerate the initial migration from the table definitions.

Nothing has been released yet, so the schema lives in one revision (``0001_initial``); this script
rewrites it by autogenerating against an empty SQLite database. Once a release ships, switch to
incremental revisions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from voipbin.store.db import MIGRATIONS_DIR, _alembic_config


def main() -> None:
    versions = MIGRATIONS_DIR / "versions"
    for old in versions.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        with engine.begin() as conn:
            command.revision(
                _alembic_config(conn), message="initial", autogenerate=True, rev_id="0001", head="base"
            )
    for new in versions.glob("0001_*.py"):
        new.rename(versions / "0001_initial.py")
    print("wrote", versions / "0001_initial.py")


if __name__ == "__main__":
    main()
