"""`tps19 notify test`: one message to each TPS19_NOTIFY__URLS URL, and what each answered."""

from __future__ import annotations

import typer

from .common import fail

notify_app = typer.Typer(help="Notifications (apprise URLs in TPS19_NOTIFY__URLS).", no_args_is_help=True)


@notify_app.command("test")
def test() -> None:
    """Send one test message to each configured URL and say what each answered (exit 1 if any failed)."""
    import asyncio

    from ..config import ConfigError, load_settings
    from ..engine.notify.sender import send
    from ..engine.notify.targets import NotifyConfigError, parse_targets

    try:
        settings = load_settings()
    except ConfigError as err:
        fail(str(err))
    if settings.notify.urls is None:
        fail("no notification URLs: set TPS19_NOTIFY__URLS (apprise URLs, comma- or space-separated)")
    try:
        targets = parse_targets(settings.notify.urls.get_secret_value())
    except NotifyConfigError as err:
        fail(str(err))

    async def go() -> list[tuple[bool, str]]:
        return list(await asyncio.gather(*(send(t, "TPS19 test", "a test message from `tps19 notify test`")
                                           for t in targets)))

    results = asyncio.run(go())
    secrets = [settings.notify.urls.get_secret_value()]
    for target, (ok, said) in zip(targets, results, strict=True):
        for s in secrets:
            said = said.replace(s, "***")
        tags = f" [{'+'.join(sorted(target.classes))}]" if target.classes else ""
        typer.echo(f"{target.shown}{tags}: {'delivered' if ok else 'FAILED'}" + ("" if ok and said == "delivered"
                                                                                 else f" ({said})"))
    if not all(ok for ok, _ in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")
