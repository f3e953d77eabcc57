"""The subject stage: find the hand or face in a frame, so models learn from its crop."""

from typing import Tuple


def provider_names() -> Tuple[str, ...]:
    """The subject providers' names, for command-line choices (from the one registry)."""
    from edge_app.subject.providers import PROVIDERS

    return tuple(PROVIDERS)
