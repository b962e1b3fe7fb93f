"""The package's import graph (top-level imports and those inside functions alike): no circle,
and the inference side of deploy reaches nothing of training (ppeye.engine)."""
import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ppeye")
INFERENCE_SIDE = ("ppeye.deploy.infer", "ppeye.deploy.pipeline", "ppeye.deploy.predictor")


def modules():
    out = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                mod = "ppeye." + os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[mod[: -len(".__init__")] if mod.endswith(".__init__") else mod] = path
    out["ppeye"] = out.pop("ppeye.", os.path.join(ROOT, "__init__.py"))
    return out


def graph():
    mods = modules()
    edges = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod.split(".") if path.endswith("__init__.py") else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
                full = ".".join(p for p in (base, node.module or "") if p)
                targets = [f"{full}.{a.name}" for a in node.names] + [full]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                while target not in mods and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in mods and target != mod:
                    edges[mod].add(target)
                    break
    return edges


def reachable(edges, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_graph_is_read_whole():
    edges = graph()
    assert len(edges) > 80 and "ppeye.engine.trainer" in reachable(edges, "ppeye.engine.compare")


def test_no_module_imports_itself_through_others():
    edges = graph()
    # a package reaching its own submodules through its __init__ is how packages work: only
    # modules that are not packages count
    circles = sorted(m for m in edges if m in reachable(edges, m) and not os.path.basename(modules()[m]) == "__init__.py")
    assert circles == [], f"modules in an import circle: {circles}"


def test_the_inference_side_reaches_nothing_of_training():
    edges = graph()
    for mod in INFERENCE_SIDE:
        training = sorted(m for m in reachable(edges, mod) if m.startswith("ppeye.engine"))
        assert training == [], f"{mod} reaches {training}"


# the only ppeye modules imported inside a function, each for a reason: `import ppeye` must not
# import Paddle (build_model); a training variant is a subprocess entry point (runs.py); the
# tools (ppeye/tools/*.py, entry points) answer -h and refuse bad arguments without importing Paddle
LAZY_ALLOWED = {("ppeye/__init__.py", "modeling"), ("ppeye/engine/runs.py", "trainer"),
                ("ppeye/engine/runs.py", "tools")}


def test_no_ppeye_module_is_imported_inside_a_function_but_the_listed_ones():
    found = set()
    for mod, path in modules().items():
        rel = os.path.relpath(path, os.path.dirname(ROOT)).replace(os.sep, "/")
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.ImportFrom) and (sub.level > 0 or (sub.module or "").startswith("ppeye")):
                        name = sub.module or sub.names[0].name
                        found.add((rel, name.split(".")[-1]))
                    elif isinstance(sub, ast.Import) and any(a.name.startswith("ppeye") for a in sub.names):
                        found.add((rel, sub.names[0].name))
    found = {(rel, name) for rel, name in found if not rel.startswith("ppeye/tools/")}
    assert found <= LAZY_ALLOWED, f"imports inside functions hide the import graph: {sorted(found - LAZY_ALLOWED)}"
