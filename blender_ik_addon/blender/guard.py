"""The one re-entrancy guard: while it is held, the live handlers do nothing.

Held by the live handlers while they solve (writing the pose triggers depsgraph updates, and a
``frame_set`` would re-enter the frame handler) and by a bake while it steps frames. Nestable.
"""

from __future__ import annotations

_depth = 0


class suspended:  # noqa: N801  (used like a function: `with suspended():`)
    """Context manager: the live handlers do nothing inside it."""

    def __enter__(self) -> None:
        global _depth
        _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        _depth -= 1


def is_suspended() -> bool:
    """True while live solving is suspended (see :class:`suspended`)."""
    return _depth > 0


def reset() -> None:
    """Release the guard (a file load: no handler of ours is running then)."""
    global _depth
    _depth = 0
