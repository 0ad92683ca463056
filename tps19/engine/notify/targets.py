"""TPS19_NOTIFY__URLS: apprise URLs (comma- or space-separated), each optionally limited to some
event classes by a ``tag+tag=`` prefix. The URLs carry tokens and passwords: only their redacted
form (apprise's own privacy rendering) is ever shown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# the event classes a URL may be limited to (its tags)
CLASSES = ("fills", "rejections", "unknown", "protective", "risk", "feed", "venue", "storage", "models", "summary",
           "test")
_TAGGED = re.compile(r"^([a-z]+(?:\+[a-z]+)*)=(.+)$")


class NotifyConfigError(ValueError):
    """A URL apprise cannot use, or an unknown tag: one line, the URL redacted."""


@dataclass
class Target:
    """One notification URL: what shows it (redacted), its event classes (empty: all), the
    apprise object that sends to it."""

    shown: str
    classes: frozenset[str]
    apprise: Any = field(repr=False)

    def wants(self, cls: str) -> bool:
        return not self.classes or cls in self.classes or cls == "test"


def split_urls(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,]+", text.strip()) if p]


def redact(url: str) -> str:
    """A URL as messages may show it when apprise cannot parse it: scheme and nothing else."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://***" if sep else "***"


def parse_targets(text: str) -> list[Target]:
    """Every URL of the setting as a Target; NotifyConfigError (naming the redacted URL) for one
    apprise does not know or a tag that is no event class."""
    import apprise

    targets = []
    for n, item in enumerate(split_urls(text), 1):
        classes: frozenset[str] = frozenset()
        m = _TAGGED.match(item)
        if m and "://" not in m.group(1):
            classes = frozenset(m.group(1).split("+"))
            unknown = sorted(classes - set(CLASSES))
            if unknown:
                raise NotifyConfigError(f"notify URL #{n} ({redact(m.group(2))}): unknown event class "
                                        f"{', '.join(unknown)} (known: {', '.join(CLASSES)})")
            item = m.group(2)
        ap = apprise.Apprise()
        if not ap.add(item):
            raise NotifyConfigError(f"notify URL #{n} ({redact(item)}) is not a URL apprise can send to "
                                    "(see https://github.com/caronc/apprise/wiki)")
        service = next(iter(ap))
        targets.append(Target(shown=str(service.url(privacy=True)).split("?")[0], classes=classes, apprise=ap))
    return targets
