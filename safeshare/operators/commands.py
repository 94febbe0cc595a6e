"""The operators' command groups, registered on the ``safeshare`` command in one call."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``safeshare review``, ``cases``, ``registry`` and ``ops`` to ``app``."""
    from safeshare.operators.cases import cases_app
    from safeshare.operators.deploy import ops_app
    from safeshare.operators.registry_cli import registry_app
    from safeshare.operators.review import review_app

    app.add_typer(review_app, name="review")
    app.add_typer(registry_app, name="registry")
    app.add_typer(cases_app, name="cases")
    app.add_typer(ops_app, name="ops")
