"""What moves an object (``blender/dependencies.py``), and the feedback check built on it.

Each route by which a chain's target can move with the chain's own bones is set up as an animator
would (through bpy), found by :func:`bone_links` with its route, and refused with that route by
the live pass or the bake. The neighbours that do not move with the chain stay allowed.

The rig: ``hips`` (root) -> ``shoulder`` -> ``upper`` -> ``fore`` -> ``hand`` -> ``finger``, and
``ctrl`` under ``hips``; the chain ``arm`` is ``shoulder``..``hand`` (tip ``hand``, length 4).
"""

from __future__ import annotations

from collections.abc import Callable

import bpy
import pytest
from blender_rigs import BoneDef, add_chain, empty, make_armature

from blender_ik_addon.blender import RigSetupError, bake_chains, get_status
from blender_ik_addon.blender.dependencies import BoneLink, bone_links, moves_with

CHAIN = ("shoulder", "upper", "fore", "hand")


def arm_rig(name: str = "Rig") -> bpy.types.Object:
    return make_armature([
        BoneDef("hips", (0, 0, 0), (0, 0, 1)),
        BoneDef("shoulder", (0, 0, 1), (0, 1, 1), parent="hips"),
        BoneDef("upper", (0, 1, 1), (0, 2, 1), parent="shoulder", connect=True),
        BoneDef("fore", (0, 2, 1), (0, 3, 1), parent="upper", connect=True),
        BoneDef("hand", (0, 3, 1), (0, 3.5, 1), parent="fore", connect=True),
        BoneDef("finger", (0, 3.5, 1), (0, 3.8, 1), parent="hand", connect=True),
        BoneDef("ctrl", (1, 0, 0), (1, 0, 0.5), parent="hips"),
    ], name)


def mesh(name: str = "Body") -> bpy.types.Object:
    """A one-triangle mesh near the hand, with every vertex in a group 'hand' weighted 1."""
    data = bpy.data.meshes.new(name)
    data.from_pydata([(0, 3.2, 1), (0.1, 3.2, 1), (0, 3.3, 1)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    obj.vertex_groups.new(name="hand").add([0, 1, 2], 1.0, "REPLACE")
    return obj


def deformed_mesh(rig: bpy.types.Object) -> bpy.types.Object:
    body = mesh()
    body.modifiers.new("Armature", "ARMATURE").object = rig
    return body


def driver(obj: bpy.types.Object, path: str, kind: str, source: bpy.types.Object, bone: str = "",
           prop: str = "", space: str = "WORLD_SPACE") -> bpy.types.FCurve:
    """A driver on ``obj``'s ``path``[0] (or ``path``) with one variable ``v`` of ``kind`` reading ``source``
    (its ``bone``, or its property ``prop``)."""
    fcurve = obj.driver_add(path, 0 if obj.path_resolve(path).__class__.__name__ != "bool" else -1)
    var = fcurve.driver.variables.new()
    var.name, var.type = "v", kind
    target = var.targets[0]
    target.id = source
    if kind == "SINGLE_PROP":
        target.data_path = prop
    else:
        target.bone_target, target.transform_space = bone, space
    if kind == "LOC_DIFF":  # the distance from the bone to the hips
        var.targets[1].id, var.targets[1].bone_target = source, "hips"
    fcurve.driver.expression = "v * 0.01"
    return fcurve


def links(obj: bpy.types.Object) -> list[tuple[str, str | None, str]]:
    return [(link.rig.name, link.bone, link.describe()) for link in bone_links(obj)]


def moves_when_posed(rig: bpy.types.Object, target: bpy.types.Object) -> bool:
    """Blender's own answer: does the evaluated target move when the chain's bones rotate?"""
    def world() -> list[float]:
        bpy.context.view_layer.update()
        ev = target.evaluated_get(bpy.context.evaluated_depsgraph_get())
        return [x for row in ev.matrix_world for x in row]
    before = world()
    for name in CHAIN:
        bone = rig.pose.bones[name]
        if bone.rotation_mode == "QUATERNION":
            bone.rotation_quaternion = (0.9, 0.3, 0.2, 0.1)
        else:
            bone.rotation_euler = (0.3, 0.2, 0.1)
    after = world()
    for name in CHAIN:
        rig.pose.bones[name].rotation_quaternion, rig.pose.bones[name].rotation_euler = (1, 0, 0, 0), (0, 0, 0)
    bpy.context.view_layer.update()
    return max(abs(a - b) for a, b in zip(before, after, strict=True)) > 1e-4


def live_message(rig: bpy.types.Object, target: bpy.types.Object) -> str:
    """The chain 'arm' added with ``target``: its status message after a frame change ("" if converged)."""
    add_chain(rig, "hand", 4, target, name="arm")
    bpy.context.scene.frame_set(2)
    return get_status(rig.name, "arm").message


def refused(route: str, bone: str = "'hand'") -> str:
    what = f"bone {bone} of the chain" if bone != "pose" else "the pose of armature 'Rig'"
    return (f"chain 'arm': target 'T' moves with {what} through {route}, so the chain would chase its "
            "own pose; remove that link")


# -- the routes ------------------------------------------------------------------------------------


def armature_constraint(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    con = target.constraints.new("ARMATURE")
    item = con.targets.new()
    item.target, item.subtarget = rig, "hand"


def helper_with_child_of(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    helper = empty("Helper")
    target.parent = helper
    con = helper.constraints.new("CHILD_OF")
    con.target, con.subtarget = rig, "hand"


def vertex_parent(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    target.parent, target.parent_type, target.parent_vertices = deformed_mesh(rig), "VERTEX", (0, 0, 0)


def vertex_parent_armature_deform(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    body = mesh()
    body.parent, body.parent_type = rig, "ARMATURE"  # "With Automatic Weights" without the modifier
    target.parent, target.parent_type, target.parent_vertices = body, "VERTEX_3", (0, 1, 2)


def driver_transform_channel(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    driver(target, "location", "TRANSFORMS", rig, bone="hand")


def driver_single_prop_rotation(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    rig.pose.bones["hand"].rotation_mode = "XYZ"
    driver(target, "location", "SINGLE_PROP", rig, prop='pose.bones["hand"].rotation_euler[0]')


def driver_single_prop_location(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    driver(target, "location", "SINGLE_PROP", rig, prop='pose.bones["hand"].location[1]')


def driver_distance(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    driver(target, "location", "LOC_DIFF", rig, bone="hand")


def driver_reading_a_helper_matrix(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    helper = empty("Helper")
    helper.parent, helper.parent_type, helper.parent_bone = rig, "BONE", "hand"
    driver(target, "location", "SINGLE_PROP", helper, prop="matrix_world[3][1]")


def bone_constrained_to_chain(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    target.parent, target.parent_type, target.parent_bone = rig, "BONE", "ctrl"
    con = rig.pose.bones["ctrl"].constraints.new("COPY_LOCATION")
    con.target, con.subtarget = rig, "hand"


def bone_driven_by_chain(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    target.parent, target.parent_type, target.parent_bone = rig, "BONE", "ctrl"
    driver(rig, 'pose.bones["ctrl"].location', "TRANSFORMS", rig, bone="hand")


def shrinkwrap_on_deformed_mesh(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    target.constraints.new("SHRINKWRAP").target = deformed_mesh(rig)


def hooked_vertex_parent(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    body = mesh()
    hook = body.modifiers.new("Hook", "HOOK")
    hook.object, hook.subtarget = rig, "hand"
    hook.vertex_indices_set([0, 1, 2])
    target.parent, target.parent_type, target.parent_vertices = body, "VERTEX", (0, 0, 0)


ROUTES: dict[str, tuple[Callable[[bpy.types.Object, bpy.types.Object], None], str, str]] = {
    # name: (set-up, the route in the message, the bone named ('pose': every bone))
    "armature constraint": (armature_constraint, "'T' -> Armature constraint 'Armature' -> bone 'hand' of 'Rig'",
                            "'hand'"),
    "helper with child of": (helper_with_child_of,
                             "'T' -> parent 'Helper' -> Child Of constraint 'Child Of' -> bone 'hand' of 'Rig'",
                             "'hand'"),
    "vertex parent": (vertex_parent, "'T' -> vertex parent 'Body' -> Armature modifier 'Armature' -> armature 'Rig'",
                      "pose"),
    "vertex parent, armature deform": (vertex_parent_armature_deform,
                                       "'T' -> vertex parent 'Body' -> armature-deform parent 'Rig'", "pose"),
    "driver, transform channel": (driver_transform_channel,
                                  "'T' -> driver on location[0] -> variable 'v' -> bone 'hand' of 'Rig'", "'hand'"),
    "driver, single property rotation": (driver_single_prop_rotation,
                                         "'T' -> driver on location[0] -> variable 'v' -> bone 'hand' of 'Rig'",
                                         "'hand'"),
    "driver, single property location": (driver_single_prop_location,
                                         "'T' -> driver on location[0] -> variable 'v' -> bone 'hand' of 'Rig'",
                                         "'hand'"),
    "driver, distance": (driver_distance, "'T' -> driver on location[0] -> variable 'v' -> bone 'hand' of 'Rig'",
                         "'hand'"),
    "driver reading a helper's matrix": (driver_reading_a_helper_matrix, "'T' -> driver on location[0] -> variable "
                                         "'v' -> 'Helper' -> parent bone 'hand' of 'Rig'", "'hand'"),
    "bone constrained to the chain": (bone_constrained_to_chain, "'T' -> parent bone 'ctrl' of 'Rig' -> Copy Location "
                                      "constraint 'Copy Location' -> bone 'hand' of 'Rig'", "'hand'"),
    "bone driven by the chain": (bone_driven_by_chain, "'T' -> parent bone 'ctrl' of 'Rig' -> driver on "
                                 "pose.bones[\"ctrl\"].location[0] -> variable 'v' -> bone 'hand' of 'Rig'", "'hand'"),
    "shrinkwrap on a deformed mesh": (shrinkwrap_on_deformed_mesh, "'T' -> Shrinkwrap constraint 'Shrinkwrap' -> "
                                      "'Body' -> Armature modifier 'Armature' -> armature 'Rig'", "pose"),
    "hooked vertex parent": (hooked_vertex_parent,
                             "'T' -> vertex parent 'Body' -> Hook modifier 'Hook' -> bone 'hand' of 'Rig'", "'hand'"),
}


@pytest.mark.parametrize("case", list(ROUTES))
def test_an_indirect_route_is_found_and_refused_live(case: str) -> None:
    build, route, bone = ROUTES[case]
    rig, target = arm_rig(), empty("T", (0.5, 2.5, 1.0))
    build(rig, target)
    link = moves_with(target, rig, CHAIN)
    assert link is not None and link.rig == rig
    assert (link.bone, link.describe()) == (None if bone == "pose" else bone.strip("'"), route)
    assert moves_when_posed(rig, target) or case == "driver, single property location"  # the chain writes no location
    assert live_message(rig, target) == refused(route, bone)


def test_the_bake_refuses_an_indirect_route() -> None:
    rig, target = arm_rig(), empty("T", (0.5, 2.5, 1.0))
    armature_constraint(rig, target)
    add_chain(rig, "hand", 4, target, name="arm", enabled=False)
    with pytest.raises(RigSetupError, match=r"through 'T' -> Armature constraint 'Armature' -> bone 'hand' of 'Rig', "
                                            "so the chain would chase its own pose"):
        bake_chains(rig, ["arm"], 1, 3)


def test_a_pole_on_a_route_is_refused_as_the_pole() -> None:
    rig, target, pole = arm_rig(), empty("T", (0.5, 2.5, 1.0)), empty("P", (1.0, 2.0, 1.0))
    helper_with_child_of(rig, pole)
    chain = add_chain(rig, "hand", 4, target, name="arm", enabled=False)
    chain.pole = pole
    chain.enabled = True
    bpy.context.scene.frame_set(2)
    assert get_status(rig.name, "arm").message.startswith("chain 'arm': pole 'P' moves with bone 'hand' of "
                                                          "the chain through 'P' -> parent 'Helper' -> Child Of")


def test_direct_cases_keep_their_messages() -> None:
    rig, target = arm_rig(), empty("T", (0.5, 2.5, 1.0))
    target.parent, target.parent_type, target.parent_bone = rig, "BONE", "finger"  # below the chain's tip
    assert live_message(rig, target) == ("chain 'arm': target 'T' is parented to the armature 'Rig' and would "
                                         "move with the chain that follows it; unparent it")
    target.parent = None
    con = target.constraints.new("DAMPED_TRACK")
    con.target, con.subtarget = rig, "upper"
    bpy.context.scene.frame_set(3)
    assert get_status(rig.name, "arm").message == (
        "chain 'arm': target 'T' follows the armature 'Rig' through its constraint 'Damped Track' and would "
        "move with the chain that follows it; remove that constraint")


# -- what bone_links reports ------------------------------------------------------------------------


def test_a_plain_empty_has_no_links() -> None:
    assert bone_links(empty("T")) == []


def test_a_bone_depends_on_its_parents() -> None:
    rig, target = arm_rig(), empty("T")
    target.parent, target.parent_type, target.parent_bone = rig, "BONE", "finger"
    assert links(target) == [
        ("Rig", "finger", "'T' -> parent bone 'finger' of 'Rig'"),
        ("Rig", "hand", "'T' -> parent bone 'finger' of 'Rig' -> parent bone 'hand' of 'Rig'"),
        ("Rig", "fore", "'T' -> parent bone 'finger' of 'Rig' -> parent bone 'hand' of 'Rig' -> parent bone 'fore' "
                        "of 'Rig'"),
        ("Rig", "upper", links(target)[3][2]), ("Rig", "shoulder", links(target)[4][2]),
        ("Rig", "hips", links(target)[5][2]),
    ]
    ctrl = rig.pose.bones["ctrl"]  # a bone whose parent is below the chain moves with it too
    con = ctrl.constraints.new("CHILD_OF")
    con.target, con.subtarget = rig, "finger"
    target.parent_bone = "ctrl"
    found = moves_with(target, rig, CHAIN)
    assert found is not None and found.bone == "hand"
    assert found.describe() == ("'T' -> parent bone 'ctrl' of 'Rig' -> Child Of constraint 'Child Of' -> bone 'finger' "
                                "of 'Rig' -> parent bone 'hand' of 'Rig'")


def test_links_to_other_chains_and_other_rigs_are_reported() -> None:
    rig, prop = arm_rig(), make_armature([BoneDef("grip", (0, 0, 0), (0, 0.3, 0))], "Prop")
    prop.parent, prop.parent_type, prop.parent_bone = rig, "BONE", "hand"  # a prop rig held in the hand
    target = empty("T")
    target.parent, target.parent_type, target.parent_bone = prop, "BONE", "grip"
    found = links(target)
    assert found[0] == ("Prop", "grip", "'T' -> parent bone 'grip' of 'Prop'")
    assert ("Rig", "hand", "'T' -> parent bone 'grip' of 'Prop' -> armature 'Prop' -> parent bone 'hand' of 'Rig'") \
        in found
    assert moves_with(target, prop, ["grip"]) is not None
    link = moves_with(target, rig, CHAIN)
    assert link is not None and link.bone == "hand"
    assert live_message(rig, target) == refused(link.describe())
    other = empty("Other")  # a target of the spine chain, parented to the arm chain's hand: reported, not a cycle
    other.parent, other.parent_type, other.parent_bone = rig, "BONE", "hand"
    assert [(x.rig, x.bone) for x in bone_links(other)][:2] == [(rig, "hand"), (rig, "fore")]
    assert moves_with(other, rig, ["hips"]) is not None and moves_with(other, rig, ["ctrl"]) is None


def test_cycles_end() -> None:
    rig, a, b = arm_rig(), empty("A"), empty("B")
    a.parent = b
    con = b.constraints.new("COPY_LOCATION")
    con.target = a  # a dependency cycle Blender reports, and evaluates anyway
    ctrl = rig.pose.bones["ctrl"].constraints.new("CHILD_OF")
    ctrl.target, ctrl.subtarget = rig, "ctrl"  # a bone constrained to itself
    child_of = a.constraints.new("CHILD_OF")
    child_of.target, child_of.subtarget = rig, "ctrl"
    assert [x.bone for x in bone_links(a)] == ["ctrl", "hips"]


def test_the_armature_object_and_deform_links() -> None:
    rig = arm_rig()
    target = empty("T")
    target.parent = rig  # the armature object's transform: no bone link
    assert bone_links(target) == []
    outer = arm_rig("Outer")
    rig.parent, rig.parent_type, rig.parent_bone = outer, "BONE", "hips"  # ...but what moves the armature is followed
    assert links(target) == [("Outer", "hips", "'T' -> parent 'Rig' -> parent bone 'hips' of 'Outer'")]
    target.parent, target.parent_type = rig, "ARMATURE"  # moves an Empty's matrix like an object parent
    assert links(target) == [("Outer", "hips", "'T' -> parent 'Rig' -> parent bone 'hips' of 'Outer'")]
    body = deformed_mesh(rig)
    target.parent, target.parent_type, target.parent_vertices = body, "VERTEX", (0, 0, 0)
    found = bone_links(target)
    assert (found[0].rig, found[0].bone) == (rig, None)  # every bone, each not repeated
    assert [x.bone for x in found[1:]] == ["hips"] and found[1].rig == outer


def test_geometry_routes_through_lattices_and_geometry_nodes() -> None:
    rig, body, target = arm_rig(), mesh(), empty("T")
    target.parent, target.parent_type, target.parent_vertices = body, "VERTEX", (0, 0, 0)
    cage = bpy.data.objects.new("Cage", bpy.data.lattices.new("Cage"))
    bpy.context.scene.collection.objects.link(cage)
    cage.modifiers.new("Armature", "ARMATURE").object = rig
    body.modifiers.new("Lattice", "LATTICE").object = cage
    assert links(target) == [("Rig", None, "'T' -> vertex parent 'Body' -> Lattice modifier 'Lattice' -> 'Cage' -> "
                                           "Armature modifier 'Armature' -> armature 'Rig'")]
    body.modifiers.clear()
    tree = bpy.data.node_groups.new("Nodes", "GeometryNodeTree")
    tree.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    tree.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    tree.links.new(tree.nodes.new("NodeGroupInput").outputs[0], tree.nodes.new("NodeGroupOutput").inputs[0])
    socket = tree.interface.new_socket("Source", in_out="INPUT", socket_type="NodeSocketObject")
    nodes = body.modifiers.new("GeometryNodes", "NODES")
    nodes.node_group = tree
    helper = empty("Helper")
    helper.parent, helper.parent_type, helper.parent_bone = rig, "BONE", "hand"
    nodes[socket.identifier] = helper
    found = moves_with(target, rig, CHAIN)
    assert found is not None and found.describe() == ("'T' -> vertex parent 'Body' -> Geometry Nodes modifier "
                                                      "'GeometryNodes' -> 'Helper' -> parent bone 'hand' of 'Rig'")


def test_blender_ik_bends_the_bones_above_it() -> None:
    rig, target = arm_rig(), empty("T")
    ik = rig.pose.bones["hand"].constraints.new("IK")
    ik.target, ik.subtarget, ik.chain_count = rig, "ctrl", 2  # bends 'hand' and 'fore' toward 'ctrl'
    target.parent, target.parent_type, target.parent_bone = rig, "BONE", "fore"
    assert links(target)[:3] == [
        ("Rig", "fore", "'T' -> parent bone 'fore' of 'Rig'"),
        ("Rig", "ctrl", "'T' -> parent bone 'fore' of 'Rig' -> Inverse Kinematics constraint 'IK' of bone 'hand' -> "
                        "bone 'ctrl' of 'Rig'"),
        ("Rig", "upper", "'T' -> parent bone 'fore' of 'Rig' -> parent bone 'upper' of 'Rig'"),
    ]
    target.parent_bone = "upper"  # above the IK chain
    assert "ctrl" not in [x.bone for x in bone_links(target)]


def test_a_custom_space_is_a_route() -> None:
    rig, target = arm_rig(), empty("T")
    con = target.constraints.new("COPY_ROTATION")
    con.target, con.subtarget = rig, "ctrl"
    con.owner_space, con.space_object, con.space_subtarget = "CUSTOM", rig, "hand"
    assert links(target)[:2] == [
        ("Rig", "ctrl", "'T' -> Copy Rotation constraint 'Copy Rotation' -> bone 'ctrl' of 'Rig'"),
        ("Rig", "hand", "'T' -> Copy Rotation constraint 'Copy Rotation' (custom space) -> bone 'hand' of 'Rig'"),
    ]


# -- neighbours that do not move with the chain -----------------------------------------------------


def test_a_target_parented_to_a_bone_above_the_chain_is_followed() -> None:
    rig, target = arm_rig(), empty("T", (0.5, 2.5, 1.0))
    target.parent, target.parent_type, target.parent_bone = rig, "BONE", "hips"
    target.matrix_parent_inverse = (rig.matrix_world @ rig.pose.bones["hips"].matrix).inverted()
    assert [x.bone for x in bone_links(target)] == ["hips"]
    live_message(rig, target)
    assert get_status(rig.name, "arm").converged


def neighbour_armature_object(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    target.parent = rig


def neighbour_armature_deform_empty(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    target.parent, target.parent_type = rig, "ARMATURE"  # an Empty's matrix follows the object, not the bones


def neighbour_other_armature(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    other = arm_rig("Other")
    con = target.constraints.new("ARMATURE")
    item = con.targets.new()
    item.target, item.subtarget = other, "hand"


def neighbour_unrelated_bone_driver(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    driver(target, "location", "TRANSFORMS", rig, bone="ctrl")


def neighbour_custom_property_driver(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    rig.pose.bones["hand"]["ik_fk"] = 1.0  # an IK/FK switch on the hand: the pose does not change it
    driver(target, "hide_viewport", "SINGLE_PROP", rig, prop='pose.bones["hand"]["ik_fk"]')
    driver(target, "location", "SINGLE_PROP", rig, prop='pose.bones["hand"]["ik_fk"]')


def neighbour_local_channel_below(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    driver(target, "location", "SINGLE_PROP", rig, prop='pose.bones["finger"].location[1]')  # its own channel
    driver(target, "rotation_euler", "TRANSFORMS", rig, bone="finger", space="LOCAL_SPACE")
    helper = empty("Helper")
    helper.parent, helper.parent_type, helper.parent_bone = rig, "BONE", "hand"
    driver(target, "scale", "SINGLE_PROP", helper, prop="location[2]")  # the helper's channel, not where it is


def neighbour_muted_constraint(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    armature_constraint(rig, target)
    target.constraints[0].mute = True


def neighbour_muted_driver(rig: bpy.types.Object, target: bpy.types.Object) -> None:
    driver(target, "location", "TRANSFORMS", rig, bone="hand").mute = True


NEIGHBOURS = [neighbour_armature_object, neighbour_armature_deform_empty, neighbour_other_armature,
              neighbour_unrelated_bone_driver, neighbour_custom_property_driver, neighbour_local_channel_below,
              neighbour_muted_constraint, neighbour_muted_driver]


@pytest.mark.parametrize("build", NEIGHBOURS, ids=[f.__name__.removeprefix("neighbour_") for f in NEIGHBOURS])
def test_neighbours_are_not_refused(build: Callable[[bpy.types.Object, bpy.types.Object], None]) -> None:
    rig, target = arm_rig(), empty("T", (0.5, 2.5, 1.0))
    build(rig, target)
    assert moves_with(target, rig, CHAIN) is None
    assert not moves_when_posed(rig, target)
    from blender_ik_addon.blender.goals import Goal
    from blender_ik_addon.blender.scene_checks import _refuse_feedback
    from blender_ik_addon.blender.spec import ChainSpec
    _refuse_feedback(ChainSpec(name="arm", tip_bone="hand", length=4, target="T"), "target", Goal(target), rig)


def test_link_describe() -> None:
    assert BoneLink(None, "hand", ("'T'", "parent 'H'")).describe() == "'T' -> parent 'H'"


def test_a_custom_property_driven_by_the_chain_is_a_route() -> None:
    """rig["reach"] is driven by the tip bone's world X, and the target's X by rig["reach"] (a
    relay many rigs use): the target moves with the chain through the property's driver."""
    rig = make_armature([BoneDef("a", (0, 0, 0), (0, 1, 0)),
                         BoneDef("b", (0, 1, 0), (0, 2, 0), parent="a", connect=True),
                         BoneDef("c", (0, 2, 0), (0, 3, 0), parent="b", connect=True)], "Rig")
    rig["reach"] = 0.0
    relay = rig.driver_add('["reach"]').driver
    relay.type, relay.expression = "SCRIPTED", "x"
    var = relay.variables.new()
    var.name, var.type = "x", "TRANSFORMS"
    var.targets[0].id, var.targets[0].bone_target = rig, "c"
    var.targets[0].transform_type, var.targets[0].transform_space = "LOC_X", "WORLD_SPACE"
    target = empty("T", (1.0, 1.5, 0.5))
    reader = target.driver_add("location", 0).driver
    reader.type, reader.expression = "SCRIPTED", "1.2 - r"
    read = reader.variables.new()
    read.name, read.type = "r", "SINGLE_PROP"
    read.targets[0].id, read.targets[0].data_path = rig, '["reach"]'
    link = moves_with(target, rig, {"c"})
    assert link is not None
    assert link.describe() == ("'T' -> driver on location[0] -> variable 'r' -> property [\"reach\"] of 'Rig' -> "
                               "driver on [\"reach\"][0] -> variable 'x' -> bone 'c' of 'Rig'")
    rig["reach"] = 0.0
    relay.expression = "0.0"  # the property no longer reads the bone: only keyed or set by hand
    relay.variables.remove(var)
    assert moves_with(target, rig, {"a", "b", "c"}) is None


def test_a_child_of_left_at_influence_zero_is_no_route_but_a_keyed_one_is() -> None:
    """A prop hand-off: a Child Of to the hand, its influence keyed from 0 to 1, counts where it is 0;
    one left at 0 moves nothing."""
    rig = make_armature([BoneDef("a", (0, 0, 0), (0, 1, 0)),
                         BoneDef("b", (0, 1, 0), (0, 2, 0), parent="a", connect=True)], "Rig")
    target = empty("T", (1.0, 1.5, 0.5))
    con = target.constraints.new("CHILD_OF")
    con.target, con.subtarget, con.influence = rig, "b", 0.0
    assert moves_with(target, rig, {"b"}) is None
    con.keyframe_insert("influence", frame=1)
    con.influence = 1.0
    con.keyframe_insert("influence", frame=10)
    link = moves_with(target, rig, {"b"})
    assert link is not None and "Child Of constraint 'Child Of'" in link.describe()
