"""Per-chain runtime status shown by the panel: converged or not, residual, last error.

Kept in a module-level dict keyed by ``(object name, chain name)``, never in ID properties: the
frame handler must not write Blender data other than the pose (writing ID properties from a
handler dirties the file, lands in undo steps and re-triggers depsgraph updates).
"""

from __future__ import annotations

from dataclasses import dataclass

_STATUS: dict[tuple[str, str], ChainStatus] = {}


@dataclass(frozen=True)
class ChainStatus:
    """The outcome of the last solve of one chain.

    Attributes:
        solved: True if the chain was solved (possibly without converging); False on an error.
        converged: True if the tip reached the target within tolerance.
        residual: Tip distance to the target, world units (NaN when not solved).
        message: The error message, or a note (e.g. "follow mode") when solved.
        frame: The scene frame of that solve.
    """

    solved: bool
    converged: bool = False
    residual: float = float("nan")
    message: str = ""
    frame: float = 0.0

    @classmethod
    def error(cls, message: str, frame: float = 0.0) -> ChainStatus:
        """A failed solve with its message."""
        return cls(solved=False, message=message, frame=frame)

    def describe(self) -> str:
        """One line for the panel."""
        if not self.solved:
            return f"Error: {self.message}"
        state = "Converged" if self.converged else "Not converged"
        text = f"{state}, residual {self.residual:.3g} (frame {self.frame:g})"
        return f"{text}; {self.message}" if self.message else text


def set_status(object_name: str, chain_name: str, status: ChainStatus) -> None:
    """Record the last outcome of a chain."""
    _STATUS[(object_name, chain_name)] = status


def get_status(object_name: str, chain_name: str) -> ChainStatus | None:
    """The last outcome of a chain, or None if it was never solved in this session."""
    return _STATUS.get((object_name, chain_name))


def clear_status(object_name: str | None = None, chain_name: str | None = None) -> None:
    """Forget every status, an object's, or one chain's (e.g. on file load or chain removal)."""
    if object_name is None:
        _STATUS.clear()
        return
    for key in [k for k in _STATUS if k[0] == object_name and chain_name in (None, k[1])]:
        del _STATUS[key]
