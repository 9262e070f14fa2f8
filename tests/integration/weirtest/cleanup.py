"""weirtest.cleanup — what a test started and must stop: processes (by PID),
listening sockets, threads' servers. Each registers a stop function here;
a case stops what it started when it ends (run_since its mark), and
whatever is left is stopped when the script exits."""
import atexit

_stops = []  # callables, in start order


def add(stop):
    """Register stop() to be called when the current case (or the script) ends."""
    _stops.append(stop)


def mark():
    """A position to stop back to with run_since()."""
    return len(_stops)


def run_since(pos):
    """Call the stop functions registered after pos, newest first, and forget them."""
    while len(_stops) > pos:
        stop = _stops.pop()
        try:
            stop()
        except Exception:
            pass


def run_all():
    run_since(0)


atexit.register(run_all)
