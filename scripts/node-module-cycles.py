#!/usr/bin/env python3
"""Lists the import graph of crates/node's top-level modules (from `crate::x` references outside tests) and the
cycles in it (strongly connected components of more than one module). Exits 1 when there is a cycle.

    python3 scripts/node-module-cycles.py [crates/node/src]
"""
import os
import re
import sys


def module_graph(src):
    graph = {}
    modules = {n[:-3] for n in os.listdir(src) if n.endswith(".rs") and n != "lib.rs"}
    modules |= {n for n in os.listdir(src) if os.path.isfile(os.path.join(src, n, "mod.rs"))}
    for module in sorted(modules):
        file = os.path.join(src, module + ".rs")
        texts = [open(file).read()] if os.path.isfile(file) else []
        sub = os.path.join(src, module)
        if os.path.isdir(sub):
            for root, _, files in os.walk(sub):
                texts += [open(os.path.join(root, f)).read() for f in files if f.endswith(".rs")]
        deps = set()
        for text in texts:
            test = text.find("#[cfg(test)]\nmod tests")
            if test >= 0:
                text = text[:test]
            deps |= set(re.findall(r"crate::([a-z_]+)", text))
        deps.discard(module)
        graph[module] = deps
    return {m: {d for d in deps if d in graph} for m, deps in graph.items()}


def cycles(graph):
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "crates", "node", "src")
    graph = module_graph(src)
    for module in sorted(graph):
        print(f"{module} -> {' '.join(sorted(graph[module]))}")
    found = cycles(graph)
    for component in found:
        print("cycle among:", " ".join(component))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
