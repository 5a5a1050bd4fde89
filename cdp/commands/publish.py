"""``cdp publish``: the published warehouse's history (roll back to the previous one)."""

from __future__ import annotations

import typer

from cdp.commands.options import HomeOption, console, fail, paths_for

publish_app = typer.Typer(help="Published warehouse.", no_args_is_help=True)


@publish_app.command("rollback")
def publish_rollback(home: HomeOption = None) -> None:
    """Restore the previous publication of published.duckdb."""
    from profiles.publishing.publish import PublishError, rollback

    paths = paths_for(home)
    try:
        restored = rollback(paths.published_db)
    except PublishError as error:
        fail(error)
    console.print(f"restored publication {restored.name} to {paths.published_db}")
