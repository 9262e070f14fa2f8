"""weirtest.files — config files changed the way real deployments change them:
atomic rename (editors, config management) and the kubelet's ConfigMap
volume symlink swap.
"""
import os
import time


def write_atomic(path, text, mtime=None):
    """Replace a file by rename (as editors and config management do);
    mtime (seconds since the epoch) sets its modification time."""
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    os.rename(tmp, path)


class ConfigMapDir:
    """A directory laid out like a Kubernetes ConfigMap volume: FILE is a
    symlink to ..data/FILE, ..data a symlink to a timestamped directory.
    update() writes a new timestamped directory and swaps ..data atomically
    (rename of a temporary symlink), then deletes the old one — exactly the
    kubelet's AtomicWriter sequence."""

    def __init__(self, dirpath, filename, text):
        self.dir = dirpath
        self.filename = filename
        self.path = os.path.join(dirpath, filename)
        self.n = 0
        self.current = None
        os.makedirs(dirpath, exist_ok=True)
        self.update(text)
        os.symlink(os.path.join("..data", filename), self.path)

    def update(self, text):
        self.n += 1
        ts = "..%s_%06d" % (time.strftime("%Y_%m_%d_%H_%M_%S"), self.n)
        os.mkdir(os.path.join(self.dir, ts))
        with open(os.path.join(self.dir, ts, self.filename), "w") as f:
            f.write(text)
        tmp = os.path.join(self.dir, "..data_tmp")
        os.symlink(ts, tmp)
        os.rename(tmp, os.path.join(self.dir, "..data"))
        if self.current:
            old = os.path.join(self.dir, self.current)
            os.remove(os.path.join(old, self.filename))
            os.rmdir(old)
        self.current = ts
