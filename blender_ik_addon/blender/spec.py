"""A chain's settings as plain values, detached from the PropertyGroup that stores them.

The adapter works on :class:`ChainSpec` so scripts can solve or bake without the UI, and so no
Blender data reference outlives one call (holding references across undo or file load crashes).
A spec read from the settings carries its target and pole objects themselves for that call
(``target_object``/``pole_object``): a linked file can bring another object of the same name, so
an object is never looked up again by its name when the setting points at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core import SolverOptions
from ..core.compiled import unavailable_reason
from ..core.options import DEFAULTS

Quaternion4 = tuple[float, float, float, float]


@dataclass(frozen=True)
class ChainSpec:
    """One chain: which bones, which targets, how to solve.

    Attributes:
        name: The chain's name (unique per armature object).
        tip_bone: Name of the last bone of the chain.
        length: Number of bones, tip included; 0 means up to the root (Blender's IK convention).
        target: Name of the target object (its world location is the tip's goal), or None.
        pole: Name of the optional pole object (bend direction hint), or None.
        target_bone: With an armature target: the bone whose head (or tail, see
            ``target_head_tail``) is the goal and whose rotation Follow Orientation matches, as
            Blender's IK constraint's subtarget. None: the object itself. May be a bone of the
            chain's own armature (the usual control bone).
        pole_bone: With an armature pole: the bone whose head is the pole.
        target_head_tail: Where on ``target_bone`` the goal lies: 0 its head, 1 its tail.
        pole_angle: Turns the bend direction about the line from the chain's root to the target,
            radians (0: the chain bends toward the pole): the pole is turned by it about that line,
            right-handed about the root -> target direction (``solving.turn_poles``).
        pole_rule: How the pole acts. ``"bend"``: the interior joints bend toward the (turned)
            pole, the rest of the pose stays nearest the comfort pose. ``"turn"`` (Blender's IK
            constraint's rule): the whole chain turns about its root so that its comfort (or rest)
            pose points at the target and bends toward the (turned) pole, and is solved from there,
            so the bones roll with the pole; it needs a root bone free to turn every way (no limits
            or locks) and a comfort pose that bends, else ``"bend"`` applies
            (``solving.swivel_rotations``).
        use_stretch: Bones whose ``ik_stretch`` is above 0 may scale along their length to reach
            (Blender's IK Stretch).
        influence: 0..1, animatable: blends the solved rotations with the bones' own keyed pose
            (1: all IK; 0: the keys alone), like a constraint's influence.
        weight: 0..1, how much this chain counts when it shares bones with other chains and their
            targets cannot all be reached at once (Blender's IK Weight Position; :mod:`.groups`).
            0: it does not pull at all. A chain on its own ignores it.
        enabled: Live solving on frame change and while dragging a target.
        method: ``"lm"`` (default) or ``"tutorial"``.
        max_iterations: Solver iteration cap per frame.
        restarts: LM only: extra attempts from perturbed start poses for frames that stall short
            of the target. Each costs up to ``max_iterations``; a live frame whose target is out
            of reach pays them all, so keep it small.
        tolerance: Tip distance counted as reached, world units.
        follow_orientation: Also match the target's rotation with the tip bone's.
        orientation_weight: Unitless weight of that orientation goal.
        pole_weight: Unitless weight of the pole hint.
        learning_rate: Tutorial solver step size.
        sampling_distance: Tutorial solver finite-difference step, radians.
        comfort: Captured comfort pose: bone name -> rotation quaternion ``(w, x, y, z)`` of the
            bone's pose rotation. Bones missing from it use the rest pose.
        comfort_weight: Unitless weight of the pull toward the comfort pose (0 = only used as the
            starting pose).
        comfort_blend: 0 = pure IK, 1 = the comfort pose; interpolates the solved angles.
        follow_mode: The tutorial's look: one gradient sweep per frame from the current pose.
            History-dependent (the pose depends on the frames visited before).
        target_object: The target object itself, when the spec was read from the settings (a
            script's spec may give only the name: it is then looked up in the scene).
        pole_object: The pole object itself, likewise.
    """

    name: str
    tip_bone: str
    length: int = 2
    target: str | None = None
    pole: str | None = None
    enabled: bool = True
    method: str = "lm"
    max_iterations: int = DEFAULTS.max_iterations
    restarts: int = DEFAULTS.restarts
    tolerance: float = DEFAULTS.tolerance
    follow_orientation: bool = False
    orientation_weight: float = DEFAULTS.orientation_weight
    pole_weight: float = DEFAULTS.pole_weight
    learning_rate: float = DEFAULTS.learning_rate
    sampling_distance: float = DEFAULTS.sampling_distance
    comfort: dict[str, Quaternion4] = field(default_factory=dict)
    comfort_weight: float = 0.0
    comfort_blend: float = 0.0
    follow_mode: bool = False
    target_bone: str | None = None
    pole_bone: str | None = None
    target_head_tail: float = 0.0
    pole_angle: float = 0.0
    pole_rule: str = "bend"
    use_stretch: bool = False
    weight: float = 1.0
    # Not compared: animated, it changes every frame, and what the live pass keeps per spec (the
    # prepared chain, its solver jobs) does not depend on it (see :mod:`.influence`).
    influence: float = field(default=1.0, compare=False)
    target_object: Any = field(default=None, compare=False, repr=False)
    pole_object: Any = field(default=None, compare=False, repr=False)

    def solver_options(self, tolerance_scale: float = 1.0) -> SolverOptions:
        """Core options; ``tolerance_scale`` converts the world tolerance into chain units."""
        if self.follow_mode:  # one sweep per frame, from the current pose
            return SolverOptions(method="tutorial", max_iterations=1, tolerance=self.tolerance * tolerance_scale,
                                 learning_rate=self.learning_rate, sampling_distance=self.sampling_distance,
                                 orientation_weight=self.orientation_weight, pole_weight=self.pole_weight)
        return SolverOptions(method=self.method, max_iterations=self.max_iterations, restarts=self.restarts,
                             tolerance=self.tolerance * tolerance_scale, learning_rate=self.learning_rate,
                             sampling_distance=self.sampling_distance, orientation_weight=self.orientation_weight,
                             pole_weight=self.pole_weight)


    def backend_note(self) -> str:
        """Which implementation solves this chain, one line for the panel (see core.compiled).
        The add-on's comfort pull is reach-first, which the compiled kernel does too."""
        if self.follow_mode or self.method != "lm":
            return "Tutorial solver (numpy)"
        reason = unavailable_reason()
        if reason is not None:
            missing = reason.startswith("numba is not available")
            return "numpy solver (install numba for the compiled one)" if missing else f"numpy solver: {reason}"
        return "Compiled solver (numba)"


def spec_from_settings(settings: Any) -> ChainSpec:
    """Read an ``IKCHAINS_PG_chain`` into a :class:`ChainSpec` (object pointers become names)."""
    return ChainSpec(
        name=settings.name,
        tip_bone=settings.tip_bone,
        length=int(settings.chain_length),
        target=settings.target.name if settings.target is not None else None,
        pole=settings.pole.name if settings.pole is not None else None,
        enabled=bool(settings.enabled),
        method=settings.solver.lower(),
        max_iterations=int(settings.max_iterations),
        restarts=int(settings.restarts),
        tolerance=float(settings.tolerance),
        follow_orientation=bool(settings.follow_orientation),
        orientation_weight=float(settings.orientation_weight),
        pole_weight=float(settings.pole_weight),
        learning_rate=float(settings.learning_rate),
        sampling_distance=float(settings.sampling_distance),
        comfort={item.name: tuple(item.rotation) for item in settings.comfort_bones},
        comfort_weight=float(settings.comfort_weight),
        comfort_blend=float(settings.comfort_blend),
        follow_mode=bool(settings.follow_mode),
        target_bone=(settings.target_bone or None) if is_armature(settings.target) else None,
        pole_bone=(settings.pole_bone or None) if is_armature(settings.pole) else None,
        target_head_tail=float(settings.target_head_tail),
        pole_angle=float(settings.pole_angle),
        pole_rule=settings.pole_rule.lower(),
        use_stretch=bool(settings.use_stretch),
        weight=float(settings.weight),
        influence=float(settings.influence),
        target_object=settings.target,
        pole_object=settings.pole,
    )


def is_armature(obj: Any) -> bool:
    """A bone field only counts under an armature object (the panel hides it otherwise)."""
    return obj is not None and obj.type == "ARMATURE"
