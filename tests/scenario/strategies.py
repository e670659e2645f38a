"""Hypothesis strategies: valid scenario documents (plain dicts, dumped with tomlkit)."""
import unicodedata

from hypothesis import strategies as st

from gradviz.scenario import OPTIMIZER_DEFAULTS, OPTIMIZERS, SCALER_DEFAULTS

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
small = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).filter(lambda t: t.strip())
# a title is one line of text: no line breaks or other control characters (mapped from the same
# draws as ``names``, so the generated scenarios stay the ones the tests have always used)
titles = names.map(lambda t: "".join(c if unicodedata.category(c) != "Cc" else " " for c in t).strip() or "t")

EXPRESSIONS = [  # (expression, parameter names, number of input features)
    ("w * x + b", ["w", "b"], 1),
    ("tanh(x1*w1 + x2*w2 + b)", ["w1", "w2", "b"], 2),
    ("sigmoid(a * x) - exp(-c) * relu(x)", ["a", "c"], 1),
    ("w * x1 + mean(v) * x2 + x3", ["w", "v"], 3),
]
OBJECTIVES = [
    ("(1 - x)**2 + 100*(y - x**2)**2", ["x", "y"]),
    ("sum(v**2) + a**2", ["v", "a"]),
    ("0.5*(x**2 + 50*y**2)", ["x", "y"]),
]


@st.composite
def param_value(draw, name, vector_names=("v",)):
    if name in vector_names:
        shape = [draw(st.integers(1, 4))]
        choice = draw(st.sampled_from(["value", "zeros", "ones", "normal", "uniform"]))
        if choice == "value":
            return draw(st.lists(small, min_size=shape[0], max_size=shape[0]))
        spec = {"init": choice, "shape": shape}
        if choice == "normal":
            spec["std"] = draw(st.floats(0, 10))
        if choice == "uniform":
            low = draw(st.floats(-10, 9))
            spec.update(low=low, high=low + draw(st.floats(0.5, 5)))
        return spec
    if draw(st.booleans()):
        return draw(small)
    return {"init": draw(st.sampled_from(["zeros", "ones"]))} if draw(st.booleans()) else {"value": draw(small)}


@st.composite
def optimizer_table(draw, kind=None, partial=False):
    kind = kind or draw(st.sampled_from(OPTIMIZERS))
    table = {"kind": kind}
    for key, default in OPTIMIZER_DEFAULTS[kind].items():
        if partial and draw(st.booleans()):
            continue
        if key == "lr":
            table[key] = draw(st.floats(1e-6, 1.0))
        elif key == "betas":
            table[key] = [draw(st.floats(0, 0.999)), draw(st.floats(0, 0.9999))]
        elif key in ("nesterov",):
            continue
        elif isinstance(default, bool):
            table[key] = draw(st.booleans())
        elif key in ("dampening", "alpha"):
            table[key] = draw(st.floats(0, 1))
        else:
            table[key] = draw(st.floats(0, 1))
    if kind == "sgd" and table.get("momentum", 0) > 0 and table.get("dampening", 0) == 0:
        table["nesterov"] = draw(st.booleans())
    return table


@st.composite
def loop_table(draw, n, objective, precision=None):
    table = {"steps": draw(st.integers(1, 500))}
    if not objective and draw(st.booleans()):
        table["batch_size"] = draw(st.integers(1, n))
    batch = table.get("batch_size", n)
    divisors = [d for d in range(1, min(batch, 8) + 1) if batch % d == 0] if not objective else [1, 2, 3]
    table["accumulation_steps"] = draw(st.sampled_from(divisors))
    if not objective:
        table["shuffle"] = draw(st.booleans())
    table["divide_loss"] = draw(st.booleans())
    table["zero_grad"] = draw(st.sampled_from(["before_backward", "after_step", "never"]))
    table["set_to_none"] = draw(st.booleans())
    table["precision"] = precision or draw(st.sampled_from(["float32", "float64", "float16"]))
    if table["precision"] == "float16" and draw(st.booleans()):
        table["loss_scaling"] = True
        if draw(st.booleans()):
            table["scaler"] = {"init_scale": draw(st.floats(1, 2 ** 20)),
                               "growth_factor": draw(st.floats(1.01, 4)),
                               "backoff_factor": draw(st.floats(0.01, 0.99)),
                               "growth_interval": draw(st.integers(1, 5000))}
    for key in list(table):
        if key not in ("steps", "batch_size", "accumulation_steps") and draw(st.booleans()):
            if key == "precision" and table.get("loss_scaling"):
                continue
            if key == "loss_scaling" and "scaler" in table:
                continue
            del table[key]
    assert set(SCALER_DEFAULTS) >= set(table.get("scaler", {}))
    return table


@st.composite
def scenario_docs(draw):
    doc = {"scenario": {"title": draw(titles), "seed": draw(st.integers(0, 2 ** 63 - 1))}}
    if draw(st.booleans()):
        doc["scenario"]["description"] = draw(st.text(st.characters(codec="utf-8"), max_size=200))
    kind = draw(st.sampled_from(["expression", "objective", "layers"]))
    n = 0
    if kind == "objective":
        text, params = draw(st.sampled_from(OBJECTIVES))
        doc["model"] = {"objective": text, "parameters": {p: draw(param_value(p, ("v",))) for p in params}}
    elif kind == "expression":
        text, params, d = draw(st.sampled_from(EXPRESSIONS))
        n = draw(st.integers(1, 12))
        point = small if d == 1 else st.lists(small, min_size=d, max_size=d)
        doc["model"] = {"expression": text, "parameters": {p: draw(param_value(p, ())) for p in params}}
        loss = draw(st.sampled_from(["mse", "l1", "bce_with_logits"]))
        labels = st.sampled_from([0.0, 1.0]) if loss == "bce_with_logits" else small
        doc["data"] = {"x": draw(st.lists(point, min_size=n, max_size=n)),
                       "y": draw(st.lists(labels, min_size=n, max_size=n))}
        doc["loss"] = {"kind": loss}
    else:
        data_kind = draw(st.sampled_from(["linear", "moons", "xor", "circles", "spirals", "blobs"]))
        n = draw(st.integers(1, 300))
        doc["data"] = {"kind": data_kind, "n": n, "noise": draw(st.floats(0, 1))}
        hidden = draw(st.lists(st.integers(1, 16), max_size=3))
        d = 1 if data_kind == "linear" else 2
        if data_kind == "blobs":
            centers = draw(st.integers(1, 5))
            doc["data"]["centers"] = centers
            out, loss = max(centers, 2) + draw(st.integers(0, 2)), "cross_entropy"
        elif data_kind == "linear":
            out, loss = 1, draw(st.sampled_from(["mse", "l1"]))
            if draw(st.booleans()):
                doc["data"]["slope"] = draw(st.floats(-5, 5))
        else:
            out, loss = 1, draw(st.sampled_from(["mse", "l1", "bce_with_logits"]))
            if data_kind == "circles" and draw(st.booleans()):
                doc["data"]["factor"] = draw(st.floats(0.1, 0.9))
        doc["model"] = {"layers": [d] + hidden + [out]}
        if draw(st.booleans()):
            doc["model"]["activation"] = draw(st.sampled_from(["tanh", "relu", "sigmoid"]))
        doc["loss"] = {"kind": loss, "reduction": draw(st.sampled_from(["mean", "sum"]))}
    doc["optimizer"] = draw(optimizer_table())
    objective = kind == "objective"
    doc["loop"] = draw(loop_table(n, objective))
    comparisons = []
    for i in range(draw(st.integers(0, 3))):
        table = {"name": f"variant {i}"}
        if draw(st.booleans()):
            table["optimizer"] = draw(optimizer_table(partial=True))
        if draw(st.booleans()):
            main = doc["loop"]
            batch = main.get("batch_size", n)
            # only keys that keep the inherited settings valid
            loop = {"steps": draw(st.integers(1, 300)), "zero_grad": draw(st.sampled_from(
                ["before_backward", "after_step", "never"]))}
            if not objective and draw(st.booleans()):
                loop["batch_size"] = "full" if batch != n and draw(st.booleans()) else batch
                if loop["batch_size"] == "full":
                    loop["accumulation_steps"] = 1
            table["loop"] = loop
        comparisons.append(table)
    if comparisons:
        doc["comparison"] = comparisons
    for table in comparisons:         # nesterov inherits momentum/dampening: keep PyTorch's rule
        opt = table.get("optimizer", {})
        if opt.get("nesterov"):
            opt.update(momentum=max(opt.get("momentum", 0.5), 0.1), dampening=0.0)
        elif opt.get("kind", doc["optimizer"]["kind"]) == "sgd":
            opt["nesterov"] = False
            table["optimizer"] = opt
    return doc


def drawn_documents(seed_value: int, examples: int) -> list[str]:
    """``examples`` scenario documents (TOML text) drawn from :func:`scenario_docs` with a fixed seed.

    Hypothesis's draws depend on what the interpreter imported before (with gradviz.view loaded first,
    the same seed gave other documents), so tests that need the same cases on every run draw them in
    a fresh interpreter: ``python -m tests.scenario.strategies SEED EXAMPLES`` prints them as JSON."""
    import tomlkit
    from hypothesis import HealthCheck, Phase, given, seed, settings

    docs: list[str] = []

    @seed(seed_value)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(scenario_docs())
    def draw(doc):
        docs.append(tomlkit.dumps(doc))

    draw()
    return docs


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(drawn_documents(int(sys.argv[1]), int(sys.argv[2]))))
