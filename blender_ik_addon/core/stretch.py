"""IK Stretch: a joint's length factor, as Blender's IK stretches bones.

The model (measured against Blender 5.0.1's IK constraint with Stretch on; see
``scripts/bench/stretch_cases.py``):

* A joint with ``Joint.stretch`` (the bone's ``ik_stretch``) above 0 has one more degree of freedom,
  its **length factor** ``s`` (1 = rest length). Blender's IK scales the bone's pose matrix
  *uniformly* (all three columns by ``s``) and compensates its children, so each stretching bone's
  own scale is its factor. The core does the same: ``s`` is the uniform scale of the joint's frame
  after it turns, so everything that follows it (the next joint's rest offset, the tip) moves out
  along the bone by the factor, rotations unchanged.
* A joint that does not stretch keeps the scale it inherits from the joint before it (what Blender
  plays when only the stretching bones' scale channels are keyed, with Inherit Scale ``FULL``,
  ``FIX_SHEAR``, ``ALIGNED`` or ``AVERAGE``: all of them inherit a uniform scale as it is). So a
  stretching joint's factor scales the **segment** from its origin to the next stretching joint's
  origin (or to the tip). Written to a bone's scale channels, the factor is divided by the scale the
  bone inherits (:meth:`.chain.Chain.channel_scales`), as Blender's IK divides by the parent's stretch.
* Limits: ``STRETCH_LIMITS`` (Blender's legacy solver only keeps a bone longer than 0.001 of the
  chain; a factor of 10 is far past any use and keeps a runaway solve bounded).
* Reach comes first, with the angles (:mod:`.lm`): an attempt holds every factor at 1 until the
  angles stall short of the target (or from the start, for a target beyond what the angles alone
  reach, ``Chain.rigid_reach_sphere``). So a target the bones reach gets exactly the pose it gets
  without stretch. Blender's solver stretches as readily as it turns, within reach too (measured:
  bones up to 67 % shorter at ``ik_stretch`` 1, 2 % at 0.1); we do not.
* Beyond, the nearest-pose task (:mod:`.posture`) treats ``s = 1`` as the preferred value: one
  residual row per factor, ``sqrt(w) * length * (s - 1)`` with ``length`` the world length of its
  segment and ``w = STRETCH_WEIGHT / ik_stretch**2``. Blender's solver gives the stretch degree of
  freedom the weight ``ik_stretch**2`` (stiffness ``1 - ik_stretch**2``): a damped least-squares
  step then costs ``(length change)**2 / ik_stretch**2``, and so does ours. So a target beyond reach
  is reached by stretching each segment in proportion to ``ik_stretch**2``, Blender's own split on a
  straight chain (equal ``ik_stretch`` 0.1: the same factors to 3 digits; unequal ones: Blender's
  iterations end more lopsided), while the angles stay near their preferred pose.
"""

from __future__ import annotations

from typing import Final

STRETCH_LIMITS: Final = (0.01, 10.0)
"""``(lowest, highest)`` length factor of a stretching joint."""

STRETCH_WEIGHT: Final = 1.0
"""Comfort weight of a factor's distance from 1 at ``ik_stretch`` 1 (divided by ``ik_stretch**2``)."""


def stretch_weight(ik_stretch: float) -> float:
    """The unitless comfort weight of a joint's length factor (see the module docstring)."""
    return STRETCH_WEIGHT / (ik_stretch * ik_stretch)
