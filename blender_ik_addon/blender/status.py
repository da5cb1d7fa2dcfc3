"""Per-chain runtime status shown by the panel: converged or not, residual, last error; and what
the last bake of the chain found (where its pose jumps).

Kept in module-level dicts keyed by ``(object name, chain name)``, never in ID properties: the
frame handler must not write Blender data other than the pose (writing ID properties from a
handler dirties the file, lands in undo steps and re-triggers depsgraph updates).

The two records are separate because they describe different things: :class:`ChainStatus` is the
last solve (a live solve replaces it on the next frame change), :class:`BakeFindings` describes the
keys the last bake wrote, and stays until the chain is baked again (or the file is reloaded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_STATUS: dict[tuple[str, str], ChainStatus] = {}
_FINDINGS: dict[tuple[str, str], BakeFindings] = {}

SWITCH_REMEDY = "add a pole or a comfort pose, or bake with Continuous"
"""What to do about a switch in a bake that solved every frame on its own."""
CONTINUOUS_REMEDY = "add a pole or a comfort pose"
"""... and in a continuous bake (the pose jumps although each frame started from the last)."""


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


def frame_list(frames: Sequence[int], limit: int = 6) -> str:
    """Scene frames, compactly: ``"37, 112"``; runs of 3+ consecutive frames as ``"40-44"``; past
    ``limit`` items ``"..., and 9 more"``."""
    runs: list[tuple[int, int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], frame)
        else:
            runs.append((frame, frame))
    items: list[str] = []
    for first, last in runs:
        if last - first >= 2:
            items.append(f"{first}-{last}")
        else:
            items.extend(str(f) for f in range(first, last + 1))
    shown = ", ".join(items[:limit])
    return f"{shown}, and {len(items) - limit} more" if len(items) > limit else shown


def frames_phrase(frames: Sequence[int]) -> str:
    """``"frame 37"`` or ``"frames 37, 112"``."""
    return f"frame{'s' if len(frames) > 1 else ''} {frame_list(frames)}"


@dataclass(frozen=True)
class BakeFindings:
    """Where the poses of one chain's bake jump. Frames are scene frames.

    Attributes:
        frame_start: First baked frame.
        frame_end: Last baked frame.
        continuous: The bake solved each frame from the previous one (else each on its own).
        switches: Frames where the baked pose jumps although the target (and pole) moved smoothly:
            the pose nearest the comfort (or rest) pose switched to another solution there
            (:func:`..core.motion.find_switches`). Empty for follow-mode chains (not checked).
        nearest_switches: Continuous bakes: where the nearest pose (what a bake of each frame on
            its own, or a chunk's first frame, gives) switches.
        chunk_limit: Continuous bakes: the first frame where this bake's pose leaves the nearest
            pose, so a chunk starting there (or later) would not match it; None when it never does.
        verified: How many frames were played back and measured after the keys were written
            (:mod:`.verify`; all of them up to ``VERIFY_LIMIT``).
        played_misses: Verified frames where the solve reached the target but the played-back tip
            does not.
        played_worst: Largest played-back tip distance to the target over the verified frames.
        played_cause: Why playback differs from the solve, where known ("" if it does not).
        blend_note: Where the bake blended the solved pose with the bones' own keys (an influence
            below 1, :func:`.influence.bake_note`), "" when it did not.
        has_pole: The chain has a pole and ``has_comfort``: a captured comfort pose (the remedy
            then suggests what it does not have yet).
        bones: The chain's bones, and ``keys`` their keys as the bake left them
            (:func:`.keys.keys_fingerprint`): an undo that takes the keys back drops the findings.
    """

    frame_start: int
    frame_end: int
    continuous: bool = False
    switches: tuple[int, ...] = ()
    nearest_switches: tuple[int, ...] = ()
    chunk_limit: int | None = None
    verified: int = 0
    played_misses: tuple[int, ...] = ()
    played_worst: float = 0.0
    played_cause: str = ""
    blend_note: str = ""
    has_pole: bool = False
    has_comfort: bool = False
    bones: tuple[str, ...] = ()
    keys: tuple[Any, ...] = ()

    def playback_note(self) -> str:
        """``"plays back off target at frames 10-40 (worst 0.27): <cause>"``, or "" when playback
        matches the solve on every verified frame."""
        if not self.played_misses:
            return ""
        shown = frames_phrase(self.played_misses)
        cause = f": {self.played_cause}" if self.played_cause else ""
        return (f"plays back off target at {shown} of {self.verified} verified (worst {self.played_worst:.3g})"
                f"{cause}")

    def switch_note(self) -> str:
        """``"pose switches at frames 37, 112: add a pole ..."``, or "" when the pose never jumps."""
        if not self.switches:
            return ""
        return f"pose switches at {frames_phrase(self.switches)}: {self._remedy()}"

    def _remedy(self) -> str:
        """What to try: what the chain does not have yet (a pole, a comfort pose), else moving
        them; and, unless it was, a continuous bake."""
        if self.has_pole and self.has_comfort:
            add = "move the pole or the comfort pose"
        elif self.has_pole:
            add = "add a comfort pose"
        elif self.has_comfort:
            add = "add a pole"
        else:
            return CONTINUOUS_REMEDY if self.continuous else SWITCH_REMEDY
        return add if self.continuous else f"{add}, or bake with Continuous"

    def chunk_note(self) -> str:
        """Continuous bakes: which chunk boundaries give the same keys as this bake ("" otherwise).

        A chunk that starts at frame S solves S as nearest, so it continues like this bake only
        if this bake's pose at S is still the nearest pose.
        """
        if not self.continuous:
            return ""
        if self.chunk_limit is None:
            return ("chunk boundaries: this bake stays on the nearest pose, so chunks split at any frame join it "
                    "without a jump")
        switched = (f" (the nearest pose switches at {frames_phrase(self.nearest_switches)})"
                    if self.nearest_switches else "")
        left = f"this bake leaves the nearest pose from frame {self.chunk_limit}{switched}"
        if self.chunk_limit <= self.frame_start + 1:
            return f"chunk boundaries: a chunk solves its first frame as nearest, and {left}: bake the range in one job"
        return (f"chunk boundaries: a chunk solves its first frame as nearest, and {left}: split chunks only at "
                f"frames before {self.chunk_limit}, or bake the range in one job")

    def notes(self) -> list[str]:
        """The non-empty notes: playback that misses, the switches, the chunk boundaries, then where the
        pose was blended with the keys."""
        return [note for note in (self.playback_note(), self.switch_note(), self.chunk_note(), self.blend_note)
                if note]


def set_status(object_name: str, chain_name: str, status: ChainStatus) -> None:
    """Record the last outcome of a chain."""
    _STATUS[(object_name, chain_name)] = status


def get_status(object_name: str, chain_name: str) -> ChainStatus | None:
    """The last outcome of a chain, or None if it was never solved in this session."""
    return _STATUS.get((object_name, chain_name))


def set_findings(object_name: str, chain_name: str, findings: BakeFindings) -> None:
    """Record what the last bake of a chain found (replacing an earlier bake's)."""
    _FINDINGS[(object_name, chain_name)] = findings


def get_findings(object_name: str, chain_name: str) -> BakeFindings | None:
    """What the last bake of a chain found, or None if it was not baked in this session."""
    return _FINDINGS.get((object_name, chain_name))


def findings_items() -> list[tuple[tuple[str, str], BakeFindings]]:
    """Every kept bake finding: ``((object name, chain name), findings)``."""
    return list(_FINDINGS.items())


def clear_findings(object_name: str, chain_name: str) -> None:
    """Forget one chain's bake findings (its status stays)."""
    _FINDINGS.pop((object_name, chain_name), None)


def clear_status(object_name: str | None = None, chain_name: str | None = None) -> None:
    """Forget every status and bake finding, an object's, or one chain's (e.g. on file load or chain
    removal)."""
    for store in (_STATUS, _FINDINGS):
        if object_name is None:
            store.clear()
            continue
        for key in [k for k in store if k[0] == object_name and chain_name in (None, k[1])]:
            del store[key]
