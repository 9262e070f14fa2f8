"""weirtest.routing — weir's routing arithmetic recomputed independently, so
tests can predict where a request goes.
"""



def fnv1a_bucket(key):
    """The sticky bucket of a key, as weir computes it (FNV-1a 64 % 10000)."""
    h = 14695981039346656037
    for b in key.encode():
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % 10000
