"""Issue 20: packaging. `meson install --destdir` puts what an operator
expects where a distribution would: the binaries (weir-pod only when asked),
a systemd unit that `systemd-analyze verify` accepts (reload = SIGHUP,
hardened), the sample config, the man pages (rendered by `man -l` without
warnings) and bash/zsh completion for weirctl that works against a running
weir. Nothing is skipped: a missing tool is a failed check (tests/install-deps.sh
installs systemd, man-db, groff and zsh)."""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403
from weirtest.procs import BUILD, SRC  # noqa: E402


def run(argv, env=None, cwd=None, timeout=120):
    full = dict(os.environ)
    if env:
        full.update(env)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full, cwd=cwd,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def options(builddir):
    rc, out, err = run(["meson", "introspect", "--buildoptions", builddir])
    return {o["name"]: o["value"] for o in json.loads(out)}


opts = options(BUILD)
prefix = opts["prefix"]


def under(key):
    v = opts[key]
    return v if os.path.isabs(v) else os.path.join(prefix, v)


dest = tmpdir()
rc, out, err = run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild", "--quiet"])
check(rc == 0, "meson install --destdir %s: rc=%d %s" % (dest, rc, err.strip()[-300:]))


def D(path):
    return dest + path


bindir = under("bindir")
for b in ("weir", "weirctl", "weir-bench"):
    p = D(os.path.join(bindir, b))
    check(os.path.isfile(p) and os.access(p, os.X_OK), "installed %s" % p[len(dest):])
check(not os.path.exists(D(os.path.join(bindir, "weir-pod"))) or opts["install_pod"],
      "weir-pod is not installed unless -Dinstall_pod=true (it is a test server)")

# ---- the sample config
sample = D(os.path.join(under("sysconfdir"), "weir", "weir.yaml"))
with open(os.path.join(SRC, "conf", "weir.yaml")) as f:
    conf_text = f.read()
check(os.path.isfile(sample) and open(sample).read() == conf_text,
      "the sample config is %s (conf/weir.yaml)" % sample[len(dest):])
rc, out, err = run([D(os.path.join(bindir, "weir")), "-t", "-c", sample])
check(rc == 0, "the installed weir accepts the installed sample config: %s" % err.strip())

# ---- the systemd unit
unitdir = opts["systemdunitdir"] or os.path.join(prefix, "lib", "systemd", "system")
unit = D(os.path.join(unitdir, "weir.service"))
check(os.path.isfile(unit), "installed %s" % unit[len(dest):])
text = open(unit).read() if os.path.isfile(unit) else ""
lines = set(ln.strip() for ln in text.splitlines())
cfg_path = os.path.join(under("sysconfdir"), "weir", "weir.yaml")
for want in ("ExecStart=%s -c %s" % (os.path.join(bindir, "weir"), cfg_path),
             "ExecStartPre=%s -t -c %s" % (os.path.join(bindir, "weir"), cfg_path),
             "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM",
             "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
             "RuntimeDirectory=weir", "ProtectHome=yes", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"):
    check(want in lines, "the unit has %s" % want)

analyze = shutil.which("systemd-analyze")
check(analyze is not None, "systemd-analyze is installed (Debian package systemd)")
if analyze:
    # verify checks that every command exists and every man page in
    # Documentation= opens: point it at the DESTDIR copies.
    vdir = tmpdir()
    vunit = os.path.join(vdir, "weir.service")
    with open(vunit, "w") as f:
        f.write(text.replace(bindir + "/", D(bindir) + "/"))
    manpath = D(under("mandir"))
    rc, out, err = run([analyze, "verify", vunit], env={"MANPATH": manpath}, cwd=vdir)
    check(rc == 0 and not (out + err).strip(),
          "systemd-analyze verify weir.service: clean (rc=%d) %s" % (rc, (out + err).strip()))
    broken = os.path.join(tmpdir(), "weir.service")
    with open(broken, "w") as f:
        f.write(text.replace(bindir + "/", D(bindir) + "/").replace("ExecReload=", "ExecRelaod="))
    rc, out, err = run([analyze, "verify", broken], env={"MANPATH": manpath})
    check("ExecRelaod" in out + err, "...and it does report a broken unit: %s" % (out + err).strip())
    rc, out, err = run([analyze, "security", "--offline=true", vunit], env={"MANPATH": manpath})
    overall = [ln for ln in (out + err).splitlines() if "Overall exposure level" in ln]
    check(overall and overall[0].split(":")[1].split()[1] in ("OK", "SAFE"),
          "systemd-analyze security rates the unit's exposure OK: %s" % (overall or (out + err)[-300:]))

# ---- man pages
mandir = D(under("mandir"))
pages = {"man8/weir.8": "WEIR(8)", "man1/weirctl.1": "WEIRCTL(1)",
         "man1/weir-bench.1": "WEIR-BENCH(1)", "man5/weir.yaml.5": "WEIR.YAML(5)"}
for page, title in pages.items():
    p = os.path.join(mandir, page)
    check(os.path.isfile(p), "installed man page %s" % page)
    rc, out, err = run(["man", "-l", p], env={"MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
    check(rc == 0 and out.startswith(title) and "NAME" in out and "SEE ALSO" in out,
          "man -l %s renders (%s ...)" % (page, out[:40].strip()))
    rc, out, err = run(["groff", "-man", "-Tutf8", "-ww", "-z", p])
    check(rc == 0 and not err.strip(), "groff -ww finds nothing to warn about in %s: %s"
          % (page, err.strip()[:300]))
rc, out, err = run(["man", "-l", os.path.join(mandir, "man5/weir.yaml.5")],
                   env={"MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
check("guard:" in out and "access_log:" in out and "discover_interval" in out,
      "weir.yaml(5) shows every key (conf/weir.yaml)")
rc, out, err = run(["man", "-l", os.path.join(mandir, "man1/weirctl.1")],
                   env={"MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
check("dry-run=1" in out and "force=1" in out and "rollout" in out and "EXIT STATUS" in out,
      "weirctl(1) has the commands, dry-run/force and the exit status")

# ---- completion
bash_comp = D(os.path.join(under("datadir"), "bash-completion", "completions", "weirctl"))
zsh_comp = D(os.path.join(under("datadir"), "zsh", "site-functions", "_weirctl"))
check(os.path.isfile(bash_comp), "installed bash completion %s" % bash_comp[len(dest):])
check(os.path.isfile(zsh_comp), "installed zsh completion %s" % zsh_comp[len(dest):])
w = Weir("""
listen: {listen}
control: {control}
access_log: {{enabled: false}}
versions:
  blue:
    endpoints: [%s]
  green:
    endpoints: [%s]
split: {{blue: 100}}
""" % (dead_address(), dead_address()))


def complete(words):
    """COMPREPLY of the installed bash completion for the words (the last is being typed)."""
    script = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _weirctl; printf "%%s\\n" "${COMPREPLY[@]}"'
              % (bash_comp, " ".join("'%s'" % x for x in words), len(words) - 1))
    rc, out, err = run(["bash", "-c", script], env={"PATH": D(bindir) + ":" + os.environ["PATH"]})
    return out.split()


check(complete(["weirctl", "fl"]) == ["flip"], "bash: weirctl fl<TAB> -> flip")
check("rollback" in complete(["weirctl", "ro"]) and "rollout" in complete(["weirctl", "ro"]),
      "bash: weirctl ro<TAB> -> rollback rollout")
check(sorted(complete(["weirctl", "-s", w.control, "flip", ""])) ==
      sorted(["blue", "green", "if-generation=", "dry-run=1", "force=1"]),
      "bash: weirctl -s SOCK flip <TAB> offers the running weir's versions and the flags: %s"
      % complete(["weirctl", "-s", w.control, "flip", ""]))
check(complete(["weirctl", "rollout", "pr"]) == ["promote"], "bash: weirctl rollout pr<TAB> -> promote")
zsh = shutil.which("zsh")
check(zsh is not None, "zsh is installed (Debian package zsh)")
if zsh:
    rc, out, err = run([zsh, "-n", zsh_comp])
    check(rc == 0 and open(zsh_comp).readline().strip() == "#compdef weirctl",
          "zsh: _weirctl parses and declares #compdef weirctl: %s" % err.strip())
    # Load it the way zsh does (compinit with the installed directory on fpath).
    script = ('fpath=(%s $fpath); autoload -Uz compinit; compinit -u -d %s/zcompdump; '
              'print -r -- ${_comps[weirctl]}' % (os.path.dirname(zsh_comp), tmpdir()))
    rc, out, err = run([zsh, "-f", "-c", script])
    check(rc == 0 and out.strip() == "_weirctl", "zsh: compinit binds weirctl to _weirctl: %r %s"
          % (out.strip(), err.strip()[:200]))

# ---- what a distribution build (prefix /usr, weir-pod asked for) would install
tb = os.path.join(tmpdir(), "b")
rc, out, err = run(["meson", "setup", tb, SRC, "--prefix=/usr", "-Dinstall_pod=true"], timeout=300)
check(rc == 0, "meson setup --prefix=/usr -Dinstall_pod=true (configure only): %s" % err.strip()[-300:])
if rc == 0:
    rc, out, err = run(["meson", "introspect", "--installed", tb])
    dests = set(json.loads(out).values()) if rc == 0 else set()
    for want in ("/usr/bin/weir-pod", "/etc/weir/weir.yaml", "/usr/lib/systemd/system/weir.service",
                 "/usr/share/man/man8/weir.8", "/usr/share/bash-completion/completions/weirctl"):
        check(want in dests, "with prefix /usr it installs %s" % want)

done()
