"""Module folding: a top-level module of the model (``0`` = the first layer of a Sequential, ``loss``)
drawn as one box instead of its nodes.

    graph = FoldedGraph(replay, default_collapsed(replay))
    graph.keys                   # what is drawn, in the layout's order: node ids, and a negative key per box
    graph.display_of[node_id]    # the node itself, or the box that holds it
    fold = graph.folds[key]      # a box: its module, label ("Linear 0"), members, output, parameters
    fold.state_at(frame)         # the box's combined state: FoldedState (reads like a NodeState)
    graph.edge_state(key, frame) # one drawn edge standing for several (into/out of a box)

No Qt here: which modules fold, and what a folded one shows at each frame, is decided once for
every view and tested without a screen.
"""
from __future__ import annotations

from dataclasses import dataclass

from .replay import NODE_STATES, EdgeState, Frame, Replay

__all__ = ["AUTO_COLLAPSE_NODES", "Fold", "FoldedGraph", "FoldedState", "default_collapsed", "foldable_module",
           "module_label", "top_module"]

AUTO_COLLAPSE_NODES = 24      # above this many boxes a new graph opens with modules folded

# Later states win when several nodes are drawn as one (a box, or edges merged into one arrow).
_RANK = {state: k for k, state in enumerate(NODE_STATES)}


def top_module(replay: Replay, node_id: int) -> str:
    """The top-level module that made the node ("0" for "0.sub"), "" when none."""
    module = replay.modules.get(node_id, "")
    return module.split(".")[0] if module else ""


def foldable_module(replay: Replay, node_id: int) -> str | None:
    """The module a click on the node folds or unfolds, or None when its module cannot fold."""
    top = top_module(replay, node_id)
    return top if top in replay.collapsible_modules() else None


def module_label(replay: Replay, module: str) -> str:
    """What a folded module is called: its class and name, ``Linear 0``."""
    return f"{replay.module_type(module)} {module}"


def default_collapsed(replay: Replay | None) -> set[str]:
    """Modules folded when a graph first appears, so that the overview stays readable: the loss
    first (l1 is Sub, Abs, Mean; fused losses are one node and do not fold), then every module, while the
    graph has more than AUTO_COLLAPSE_NODES boxes. The user expands any of them on demand."""
    if replay is None:
        return set()
    modules = replay.collapsible_modules()
    order = [m for m in modules if m == "loss"] + [m for m in modules if m != "loss"]
    collapsed: set[str] = set()
    visible = len(replay.nodes)
    for m in order:
        if visible <= AUTO_COLLAPSE_NODES:
            break
        collapsed.add(m)
        visible -= len(replay.module_members(m)) - 1
    return collapsed


@dataclass(frozen=True)
class FoldedState:
    """A folded module at one frame; has the fields of a NodeState a box shows, so views draw it alike."""
    state: str = "idle"                # the most advanced of its members' states (or the active one)
    value: object = None               # the output member's value
    grad: object = None                # the gradient the output received, else the latest one inside
    param_grads: tuple = ()            # (short name, .grad or None) of each parameter inside: ("weight", g)
    grad_badge: object = None
    accumulation: object = None
    cleared: str = ""
    param_before: object = None
    stepped: bool = False


@dataclass(frozen=True)
class Fold:
    """One folded module: the nodes its box stands for."""
    module: str
    label: str                         # "Linear 0"
    members: tuple                     # node ids inside, in trace order
    output: int                        # the member whose value leaves the box
    params: tuple                      # the parameters inside (node ids)
    param_names: tuple                 # and their names ("0.weight")
    n_ops: int

    @classmethod
    def of(cls, replay: Replay, module: str) -> Fold:
        members = tuple(replay.module_members(module))
        member_set = set(members)
        outs = [n for n in members if any(c not in member_set for c in replay.consumers.get(n, []))]
        params = tuple(n for n in members if n in replay.param_names)
        return cls(module, module_label(replay, module), members, max(outs) if outs else max(members), params,
                   tuple(replay.node_name(n) for n in params),
                   sum(1 for n in members if replay.nodes[n].kind == "op"))

    def is_active(self, frame: Frame) -> bool:
        return any(n in frame.active_nodes for n in self.members)

    def state_at(self, frame: Frame) -> FoldedState:
        nodes = frame.nodes
        active = [n for n in self.members if n in frame.active_nodes]
        if active:
            state = "backward" if any(nodes[n].state == "backward" for n in active) else "forward"
        else:
            state = NODE_STATES[max(_RANK[nodes[n].state] for n in self.members)]
        out = nodes[self.output]
        grad = out.grad
        if grad is None:        # before the output's backward: the latest gradient inside the box
            for n in self.members:
                if nodes[n].grad is not None and nodes[n].state.startswith("backward"):
                    grad = nodes[n].grad
        param_grads = tuple((name.split(".")[-1], nodes[n].grad_badge)
                            for n, name in zip(self.params, self.param_names))
        return FoldedState(state=state, value=out.value, grad=grad, param_grads=param_grads)


class FoldedGraph:
    """The replay's graph with the modules ``collapsed`` each drawn as one box (see the module docstring)."""

    def __init__(self, replay: Replay, collapsed):
        self.collapsed = frozenset(collapsed)
        self.display_of: dict[int, int] = {}         # node id -> itself, or its box's (negative) key
        boxes: dict[str, int] = {}
        for nid in replay.nodes:
            top = top_module(replay, nid)
            if top in self.collapsed:
                if top not in boxes:
                    boxes[top] = -(len(boxes) + 1)
                self.display_of[nid] = boxes[top]
            else:
                self.display_of[nid] = nid
        self.folds: dict[int, Fold] = {key: Fold.of(replay, module) for module, key in boxes.items()}
        # the layout's initial order: nodes as the trace lists them, each box where its first member was
        self.keys: list[int] = list(dict.fromkeys(self.display_of[nid] for nid in replay.nodes))
        self.edges: dict[tuple, list] = {}          # drawn edge -> the edges it stands for
        for src, dst in replay.edges:
            a, b = self.display_of[src], self.display_of[dst]
            if a != b:
                self.edges.setdefault((a, b), []).append((src, dst))

    def module_of_box(self, key: int) -> str | None:
        fold = self.folds.get(key)
        return fold.module if fold is not None else None

    def edge_state(self, key: tuple, frame: Frame) -> tuple[EdgeState, bool]:
        """The state a drawn edge shows and whether it is active: of several edges drawn as one, the
        active one, else the most advanced."""
        under = self.edges[key]
        if len(under) == 1:
            k = under[0]
            return frame.edges[k], k in frame.active_edges
        states = [(frame.edges[k], k in frame.active_edges) for k in under]
        return max(states, key=lambda s: (s[1], _RANK[s[0].state]))
