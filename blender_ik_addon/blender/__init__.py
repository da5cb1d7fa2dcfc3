"""The bpy adapter: the only layer that touches Blender data. ``ui`` and ``handlers`` build on it,
and so can headless scripts (no UI context needed):

    from blender_ik_addon.blender import bake_chains, key_chains, solve_rig
    report = bake_chains(bpy.data.objects["Armature"], ["arm.L"], 1, 250)
    print(report.summary())

Modules (docs/architecture.md has the map):

* reading the rig: :mod:`.read` (armature -> core chain), :mod:`.limits` (limits, locks, Euler
  orders), :mod:`.structure` (a chain read once, read again on a real change), :mod:`.settings`
  (the add-on's settings, the one place that reads them), :mod:`.spec` (a chain's settings as
  values), :mod:`.goals` (a target or pole: an object, or a bone of an armature),
  :mod:`.scene_checks` (setup checks and their messages), :mod:`.sampling` (targets and bases over
  frames), :mod:`.dependencies` (what moves an object or bone: every route to armature bones);
* solving: :mod:`.solving` (chain-space solve of ``F`` frames, shared by live and bake),
  :mod:`.stacking` (chains hanging below chains), :mod:`.order` (chains that follow chains: order,
  cycles, carrying followers live), :mod:`.influence` (a chain's Influence: the IK/FK blend),
  :mod:`.grouping` (which chains share bones) and :mod:`.groups` (such chains solved together as
  one tree);
* writing: :mod:`.write` (angles -> pose channels), :mod:`.rig_pose` (the rig's pose channels
  read and written in bulk), :mod:`.keys` (bulk F-curve keys, 4.2 and 4.4+
  actions), :mod:`.action_time` (scene frames -> the action times keys play at), :mod:`.outputs`
  (will the keys play as written), :mod:`.verify` (the keys played back and measured);
* passes: :mod:`.live` (every chain of a rig at the current frame), :mod:`.replay` (its fast
  lane: the last full frame pass replayed with new targets), :mod:`.bake` (a frame range),
  :mod:`.frozen_inputs` (the settings and limits a bake reads once, refused where they are keyed
  to change);
* adoption: :mod:`.adopt` (Blender's IK constraints made into chains, and given back);
* runtime: :mod:`.events` (what Blender's events do; ``handlers.py`` wires them), :mod:`.guard`
  (the one re-entrancy guard), :mod:`.status` (per-chain status for the panel), :mod:`.errors`.
"""

from .adopt import AdoptReport, RestoreReport, adopt_constraints, restore_constraints
from .bake import BakeReport, ChainBakeResult, bake_chains, key_chains
from .errors import RigSetupError
from .live import solve_chain, solve_rig
from .read import BoneBinding, ChainBinding, chain_base, read_chain
from .solving import FrameSolution, PreparedChain, prepare, solve_frames
from .spec import ChainSpec, spec_from_settings
from .status import ChainStatus, get_status

__all__ = [
    "AdoptReport", "BakeReport", "BoneBinding", "ChainBakeResult", "ChainBinding", "ChainSpec", "ChainStatus",
    "FrameSolution", "PreparedChain", "RestoreReport", "RigSetupError", "adopt_constraints", "bake_chains",
    "chain_base", "get_status", "key_chains", "prepare", "read_chain", "restore_constraints", "solve_chain",
    "solve_frames", "solve_rig", "spec_from_settings",
]
