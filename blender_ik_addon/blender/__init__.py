"""The bpy adapter: the only layer that touches Blender data. ``ui`` and ``handlers`` build on it,
and so can headless scripts (no UI context needed):

    from blender_ik_addon.blender import bake_chains, key_chains, solve_rig
    report = bake_chains(bpy.data.objects["Armature"], ["arm.L"], 1, 250)
    print(report.summary())

Modules: :mod:`.read` (armature -> core chain), :mod:`.write` (angles -> pose channels),
:mod:`.keys` (bulk F-curve keys, 4.2 and 4.4+ actions), :mod:`.sampling` (per-frame targets),
:mod:`.solving` (chain-space batch solve), :mod:`.live` (solve at the current frame),
:mod:`.bake` (range bake), :mod:`.status` (per-chain runtime status), :mod:`.spec` (settings).
"""

from .bake import BakeReport, ChainBakeResult, bake_chains, key_chains
from .errors import RigSetupError
from .live import solve_chain, solve_rig
from .read import BoneBinding, ChainBinding, chain_base, read_chain
from .solving import FrameSolution, PreparedChain, prepare, solve_frames
from .spec import ChainSpec, spec_from_settings
from .status import ChainStatus, get_status

__all__ = [
    "BakeReport", "BoneBinding", "ChainBakeResult", "ChainBinding", "ChainSpec", "ChainStatus", "FrameSolution",
    "PreparedChain", "RigSetupError", "bake_chains", "chain_base", "get_status", "key_chains", "prepare",
    "read_chain", "solve_chain", "solve_frames", "solve_rig", "spec_from_settings",
]
