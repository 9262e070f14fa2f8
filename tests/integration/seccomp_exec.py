#!/usr/bin/python3
"""seccomp_exec.py PROFILE.json [--deny NAME,...] -- PROGRAM [ARG...]

Load an OCI seccomp profile (the JSON a kubelet's Localhost profile or
Docker's --security-opt seccomp= takes) the way runc does, with libseccomp
(through ctypes: Debian's libseccomp2, no headers needed), then exec
PROGRAM under it. --deny removes syscalls from the profile's allow rules,
e.g. the io_uring ones, as Docker's and containerd's RuntimeDefault do.
Names this architecture does not know are skipped, as runc skips them.
Only defaultAction/defaultErrnoRet and SCMP_ACT_ALLOW rules without
argument conditions are understood (weir's profile has nothing else).
"""
import ctypes
import ctypes.util
import json
import os
import sys

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000


def scmp_errno(e):
    return 0x00050000 | (e & 0xFFFF)


def main():
    args = sys.argv[1:]
    if "--" not in args or not args:
        sys.exit(__doc__)
    sep = args.index("--")
    opts, prog = args[:sep], args[sep + 1:]
    profile = json.load(open(opts[0]))
    deny = set()
    if len(opts) >= 3 and opts[1] == "--deny":
        deny = set(opts[2].split(","))
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    da = profile["defaultAction"]
    if da == "SCMP_ACT_ERRNO":
        default = scmp_errno(profile.get("defaultErrnoRet", 1))
    elif da in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS"):
        default = SCMP_ACT_KILL_PROCESS
    else:
        sys.exit("seccomp_exec: unsupported defaultAction " + da)
    ctx = lib.seccomp_init(default)
    if not ctx:
        sys.exit("seccomp_exec: seccomp_init failed")
    for rule in profile["syscalls"]:
        if rule["action"] != "SCMP_ACT_ALLOW" or rule.get("args"):
            sys.exit("seccomp_exec: only plain SCMP_ACT_ALLOW rules are supported")
        for name in rule["names"]:
            if name in deny:
                continue
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:
                continue  # not a syscall of this architecture
            if lib.seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0:
                sys.exit("seccomp_exec: cannot add " + name)
    if lib.seccomp_load(ctx) != 0:
        sys.exit("seccomp_exec: seccomp_load failed")
    os.execv(prog[0], prog)


if __name__ == "__main__":
    main()
