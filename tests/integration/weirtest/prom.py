"""weirtest.prom — a strict parser of the Prometheus text exposition (0.0.4)
weir's /metrics serves, series selection by labels, and one scrape.
"""
from .http import admin_get


def parse_prom(text):
    """Parse Prometheus text exposition (0.0.4). Returns (samples, types):
    samples maps (name, frozenset of (label, value)) to a float; types maps a
    family name to its TYPE. Raises ValueError on a line it cannot read or a
    duplicate series."""
    samples = {}
    types = {}

    def unescape(v):
        out, i = [], 0
        while i < len(v):
            if v[i] == "\\" and i + 1 < len(v):
                out.append({"n": "\n", "\\": "\\", '"': '"'}.get(v[i + 1], "\\" + v[i + 1]))
                i += 2
            else:
                out.append(v[i])
                i += 1
        return "".join(out)

    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if line.startswith("#"):
            continue
        labels = []
        if "{" in line:
            name, rest = line.split("{", 1)
            i = 0
            while rest[i] != "}":
                eq = rest.index("=", i)
                lname = rest[i:eq]
                if rest[eq + 1] != '"':
                    raise ValueError("bad label in %r" % line)
                j = eq + 2
                val = []
                while rest[j] != '"':
                    if rest[j] == "\\":
                        val.append(rest[j:j + 2])
                        j += 2
                    else:
                        val.append(rest[j])
                        j += 1
                labels.append((lname, unescape("".join(val))))
                i = j + 1
                if rest[i] == ",":
                    i += 1
            value = rest[i + 1:].strip().split(" ")[0]
        else:
            name, value = line.split(" ")[:2]
        key = (name, frozenset(labels))
        if key in samples:
            raise ValueError("duplicate series %r" % line)
        samples[key] = float(value)
    return samples, types


def prom_select(samples, name, **labels):
    """{frozenset(labels): value} of the series of `name` whose labels
    include the given ones."""
    want = set(labels.items())
    return {k[1]: v for k, v in samples.items() if k[0] == name and want <= set(k[1])}


def prom_value(samples, name, **labels):
    """The value of the one series with exactly these labels, or None."""
    return samples.get((name, frozenset(labels.items())))


def prom_sum(samples, name, **labels):
    return sum(prom_select(samples, name, **labels).values())


def scrape(admin_port):
    """GET /metrics and parse it: (samples, types, raw text)."""
    r = admin_get(admin_port, "/metrics")
    if r.status != 200:
        raise RuntimeError("/metrics answered %d" % r.status)
    text = r.body.decode()
    samples, types = parse_prom(text)
    return samples, types, text
