"""The subject stage: find the hand or face in a frame, so models learn from its crop."""

from typing import Tuple


def provider_names() -> Tuple[str, ...]:
    """The subject providers' names, for command-line choices (from the one registry)."""
    # lazy: providers imports this package (a cycle at the top), and every module of
    # edge_app.subject runs this file first: the finders load only when asked
    from edge_app.subject.providers import PROVIDERS

    return tuple(PROVIDERS)
