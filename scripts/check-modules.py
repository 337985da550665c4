#!/usr/bin/env python3
"""The module rules of the dales workspace, read from the code (`.ci/run` runs this; exit 1 on a
violation, with one line per violation):

1. No import cycle between modules, at any depth: for every module, the graph of its child
   modules, with an edge A -> B when code in A (or below it) names B (or something below it)
   through `crate::`, `super::` or `self::` paths, has no cycle.
2. `dales::fused` names nothing of the crate outside itself: constants and cells come in as
   arguments.
3. The CLI's subcommands (`dales-cli/src/cmd/*.rs`) do not name each other.

Usage: scripts/check-modules.py [WORKSPACE_ROOT]
"""
import os
import re
import sys

PATH = re.compile(r"\b(crate|self|super)((?:::super)*)::([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)(::\{)?")


def modules(src):
    """Map each module path (tuple) to its file, for every .rs file under src."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod" or (len(rel) == 1 and rel[0] in ("lib", "main")):
                rel = rel[:-1]
            out[tuple(rel)] = os.path.join(root, f)
    return out


def code(path):
    """The file's code without its test module and comments."""
    text = open(path, encoding="utf-8").read()
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", text)[0]
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("//"):
            continue
        lines.append(line.split(" //")[0])
    return "\n".join(lines)


def brace_items(text, start):
    """The first-level names inside the braces opening at text[start]."""
    depth, item, items = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                items.append(item)
                break
        if depth == 1 and ch == ",":
            items.append(item)
            item = ""
        elif depth >= 1:
            item += ch
    return [i.strip().split("::")[0].split(" ")[0] for i in items if i.strip()]


def references(mod, path, known):
    """The module paths that the file of `mod` names (`self` is `mod`, `super` its parent)."""
    text = code(path)
    out = set()
    for m in PATH.finditer(text):
        kind, supers, rest, brace = m.groups()
        if kind == "crate":
            base = []
        elif kind == "self":
            base = list(mod)
        else:
            base = list(mod)[: max(len(mod) - 1 - supers.count("super"), 0)]
        names = rest.split("::")
        candidates = [names]
        if brace:
            candidates = [names + [item] for item in brace_items(text, m.end() - 1)]
        for cand in candidates:
            target = tuple(base + cand)
            # The longest prefix that is a module.
            while target and target not in known:
                target = target[:-1]
            out.add(target)
    return out


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def check_crate(name, src):
    problems = []
    known = modules(src)
    refs = {mod: references(mod, path, known) for mod, path in known.items()}
    # 1. Cycles between sibling modules, at every depth.
    graphs = {}
    for mod, targets in refs.items():
        for target in targets:
            k = 0
            while k < len(mod) and k < len(target) and mod[k] == target[k]:
                k += 1
            if k < len(mod) and k < len(target):
                parent = mod[:k]
                graphs.setdefault(parent, {}).setdefault(mod[k], set()).add(target[k])
    for parent, graph in sorted(graphs.items()):
        where = "::".join(parent) or "the crate root"
        for comp in cycles(graph):
            problems.append(f"{name}: import cycle between modules of {where}: {' <-> '.join(comp)}")
    # 2. fused names nothing outside itself.
    if name == "dales":
        for mod, targets in refs.items():
            if mod[:1] == ("fused",):
                for t in sorted(targets):
                    if t and t[0] != "fused":
                        problems.append(f"dales: {'::'.join(mod)} names crate::{'::'.join(t)} outside fused")
    # 3. CLI subcommands do not name each other.
    if name == "dales-cli":
        for mod, targets in refs.items():
            if mod[:1] == ("cmd",) and len(mod) == 2:
                for t in sorted(targets):
                    if t[:1] == ("cmd",) and len(t) >= 2 and t[1] != mod[1]:
                        problems.append(f"dales-cli: subcommand {mod[1]} names subcommand {t[1]}")
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    crates = os.path.join(root, "crates")
    problems = []
    for name in sorted(os.listdir(crates)):
        src = os.path.join(crates, name, "src")
        if os.path.isdir(src):
            problems += check_crate(name, src)
    for p in problems:
        print(p)
    if not problems:
        print("module rules hold: no import cycle, fused self-contained, subcommands independent")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
