"""weirtest.tap — TAP output and cases.

check() prints one TAP line per assertion ("ok N - what" / "not ok N - what")
so meson (protocol: 'tap') and tests/run count each check on its own.

A script made of cases registers them with @case and ends with run(): each
case starts its own fixtures (weir, pods, upstreams), which are stopped when
it ends; an exception in a case is one failed check and the next case still
runs; the cases named on the command line, or in WEIR_CASE (comma-separated),
run alone (`--list` names them). A script without cases ends with done().
"""
import os
import sys
import traceback

from . import cleanup

_count = 0
_failures = 0
_cases = []  # (name, function), in definition order


def check(cond, what):
    """Record one assertion, TAP-style; the script exits 1 at the end if any failed."""
    global _failures, _count
    _count += 1
    what = " ".join(str(what).split("\n"))
    print(("ok %d - %s" if cond else "not ok %d - %s") % (_count, what), flush=True)
    if not cond:
        _failures += 1
    return cond


def done():
    """Print the plan, stop every fixture, exit 1 if any check failed."""
    print("1..%d" % _count, flush=True)
    cleanup.run_all()
    sys.exit(1 if _failures else 0)


def case(fn):
    """Register fn as a case named fn.__name__, run by run()."""
    _cases.append((fn.__name__, fn))
    return fn


def _selected():
    names = sys.argv[1:]
    if not names:
        names = [n for n in os.environ.get("WEIR_CASE", "").split(",") if n]
    return names


def run():
    """Run the registered cases (all, or those named), then done()."""
    names = _selected()
    known = [n for n, _ in _cases]
    if names == ["--list"]:
        print("\n".join(known))
        sys.exit(0)
    unknown = [n for n in names if n not in known]
    if unknown:
        print("unknown case %s; cases: %s" % (", ".join(unknown), " ".join(known)), file=sys.stderr)
        sys.exit(2)
    for name, fn in _cases:
        if names and name not in names:
            continue
        print("# case %s" % name, flush=True)
        pos = cleanup.mark()
        try:
            fn()
        except Exception as e:
            traceback.print_exc()
            check(False, "%s: raised %s: %s" % (name, type(e).__name__, e))
        finally:
            cleanup.run_since(pos)
    done()
