#!/usr/bin/python3
"""include_graph.py — the layering check of src/ (DESIGN.md §7).

Builds two graphs from the quoted #include lines of src/*.c and src/*.h
(src/bin/ and system headers are not part of it):

  headers  x.h → y.h when x.h includes y.h; must have no cycle at all;
  modules  x → y when x.c or x.h includes y.h (a .c and its .h are one
           module, and so are the files GROUPS names; a module including
           its own header is no edge); its only
           allowed cycle is the callback pair client ↔ proxy; the lowest
           layer (loop, conn, iobatch) includes only itself, util and log.

Every other cycle is listed with the file and line of each edge on it, and
the script exits 1. Usage: include_graph.py [SRC_DIR] (default: ../src next
to this file). Exit 0: the graph is clean; 1: cycles found; 2: bad usage.
"""
import os
import re
import sys

ALLOWED = [frozenset({"client", "proxy"})]
# Files that are one module although their names differ: config.c,
# config_parse.c and config_yaml.c share config_yaml.h as their internal
# header ("everyone else uses config.h"), and call each other through it.
GROUPS = {"config_parse": "config", "config_yaml": "config",
          # a pipe conn is a conn (conn_pipe.h): conn.c hands it its hooks
          "conn_pipe": "conn",
          # conn_tls is the TLS half of conn (memory BIOs under conn.c's socket I/O)
          "conn_tls": "conn",
          # an HTTP/2 session and its streams call each other (h2_stream.h)
          "h2_session": "h2", "h2_stream": "h2"}
# The lowest layer of the data path and what it may include (DESIGN.md §7).
LOWEST = {"loop", "conn", "iobatch"}
BOTTOM = LOWEST | {"util", "log"}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
MAX_LISTED = 40


def scan(src):
    """Yield (file, line number, included header) for src/*.c, src/*.h."""
    for name in sorted(os.listdir(src)):
        if not name.endswith((".c", ".h")):
            continue
        with open(os.path.join(src, name), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if m and os.path.exists(os.path.join(src, m.group(1))):
                    yield name, n, m.group(1)


def module(name):
    base = os.path.splitext(name)[0]
    return GROUPS.get(base, base)


def build(src):
    """Return (header graph, module graph): node → {node: 'file:line'}."""
    headers, modules = {}, {}
    for f, n, inc in scan(src):
        where = "%s:%d" % (f, n)
        if f.endswith(".h"):
            headers.setdefault(f, {}).setdefault(inc, where)
        a, b = module(f), module(inc)
        if a != b:
            modules.setdefault(a, {}).setdefault(b, where)
    return headers, modules


def sccs(graph):
    """Tarjan's strongly connected components with more than one node."""
    nodes = sorted(set(graph) | {b for e in graph.values() for b in e})
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, {})):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def cycles(graph, comp, limit):
    """Elementary cycles inside one component, each once (from its least node)."""
    members = set(comp)
    found = []

    def walk(start, v, path, seen):
        for w in sorted(graph.get(v, {})):
            if w not in members or w < start or len(found) >= limit:
                continue
            if w == start:
                found.append(path[:])
            elif w not in seen:
                seen.add(w)
                path.append(w)
                walk(start, w, path, seen)
                path.pop()
                seen.discard(w)

    for s in comp:
        walk(s, s, [s], {s})
    return found


def describe(graph, cyc):
    hops = []
    for i, a in enumerate(cyc):
        b = cyc[(i + 1) % len(cyc)]
        hops.append("%s → %s (%s)" % (a, b, graph[a][b]))
    return " → ".join(cyc + [cyc[0]]) + "\n      " + "\n      ".join(hops)


def check(name, graph, allowed):
    bad = []
    comps = sccs(graph)
    for comp in comps:
        if not (len(comp) == 2 and frozenset(comp) in allowed):
            print("%s graph: strongly connected: %s" % (name, " ".join(comp)))
    for comp in comps:
        for cyc in cycles(graph, comp, MAX_LISTED):
            if frozenset(cyc) in allowed and len(cyc) == 2:
                continue
            bad.append(cyc)
    print("%s graph: %d nodes, %d edges, %d disallowed cycle(s)"
          % (name, len(set(graph) | {b for e in graph.values() for b in e}),
             sum(len(e) for e in graph.values()), len(bad)))
    for cyc in bad[:MAX_LISTED]:
        print("  cycle: " + describe(graph, cyc))
    if len(bad) >= MAX_LISTED:
        print("  (listing stopped at %d)" % MAX_LISTED)
    return not bad


def main(argv):
    if len(argv) > 2:
        print(__doc__)
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    src = argv[1] if len(argv) == 2 else os.path.join(here, "..", "src")
    if not os.path.isdir(src):
        print("no such directory: " + src)
        return 2
    headers, modules = build(src)
    ok = check("header", headers, [])
    ok = check("module", modules, ALLOWED) and ok
    for m in sorted(LOWEST):
        for inc, where in sorted(modules.get(m, {}).items()):
            if inc not in BOTTOM:
                print("lowest layer: %s includes %s (%s)" % (m, inc, where))
                ok = False
    print("include graph: " + ("clean (only client <-> proxy)" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
