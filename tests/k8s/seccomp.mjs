#!/usr/bin/env node
// seccomp.mjs — the seccomp-io-uring overlay and its profile, for run.sh.
//
//   seccomp.mjs BASE.yaml OVERLAY.yaml PROFILE.json
//
// - the base runs weir with seccompProfile RuntimeDefault (the documented
//   fallback);
// - the overlay has exactly the base's objects, and the only difference is
//   the weir Deployment's pod seccompProfile: {type: Localhost,
//   localhostProfile: weir/<the profile's file name>};
// - the profile is an OCI seccomp profile that denies by default
//   (SCMP_ACT_ERRNO), allows io_uring_setup, io_uring_enter and
//   io_uring_register, lists each syscall once, allows nothing weir's
//   threat model rules out (mount, ptrace, bpf, kexec, module loading...),
//   and has only plain allow rules.
// Prints "N passed"; exits 1 at the first failure (FAIL line).
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { YAML_OPTS } from "./yamlio.mjs";

let passed = 0;
const die = (msg) => { console.log(`FAIL ${msg}`); process.exit(1); };
const ok = (cond, msg) => { if (!cond) die(msg); passed++; };
function load(file) {
  return YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), YAML_OPTS).map((d, i) => {
    if (d.errors.length) die(`${file}#${i}: YAML: ${d.errors[0].message}`);
    return d.toJS();
  }).filter((o) => o !== null && o !== undefined);
}
const idOf = (o) => `${o?.kind}/${o?.metadata?.name}`;
const [baseFile, overlayFile, profileFile] = process.argv.slice(2);
if (!profileFile) die("usage: seccomp.mjs BASE.yaml OVERLAY.yaml PROFILE.json");
const base = load(baseFile), overlay = load(overlayFile);
const podSc = (objs) => objs.find((o) => idOf(o) === "Deployment/weir")
  ?.spec?.template?.spec?.securityContext?.seccompProfile;

ok(JSON.stringify(podSc(base)) === JSON.stringify({ type: "RuntimeDefault" }),
   `base: weir's pod seccompProfile is RuntimeDefault (got ${JSON.stringify(podSc(base))})`);
const want = { type: "Localhost", localhostProfile: `weir/${path.basename(profileFile)}` };
const got = podSc(overlay);
ok(got && got.type === want.type && got.localhostProfile === want.localhostProfile &&
   Object.keys(got).length === 2,
   `overlay: weir's pod seccompProfile is ${JSON.stringify(want)} (got ${JSON.stringify(got)})`);
ok(base.map(idOf).join() === overlay.map(idOf).join(),
   `overlay has the base's objects (${overlay.map(idOf).join()} vs ${base.map(idOf).join()})`);
const strip = (objs) => JSON.stringify(objs.map((o) => {
  const c = structuredClone(o);
  if (idOf(c) === "Deployment/weir") delete c.spec.template.spec.securityContext.seccompProfile;
  return c;
}));
ok(strip(base) === strip(overlay), "overlay differs from the base only in weir's seccompProfile");

let prof;
try { prof = JSON.parse(fs.readFileSync(profileFile, "utf8")); } catch (e) { die(`${profileFile}: ${e.message}`); }
ok(prof.defaultAction === "SCMP_ACT_ERRNO", `profile denies by default (defaultAction ${prof.defaultAction})`);
ok(Array.isArray(prof.architectures) && prof.architectures.includes("SCMP_ARCH_X86_64") &&
   prof.architectures.includes("SCMP_ARCH_AARCH64"), "profile covers x86-64 and arm64");
const known = new Set(["defaultAction", "defaultErrnoRet", "architectures", "syscalls"]);
ok(Object.keys(prof).every((k) => known.has(k)), `profile has only OCI fields (${Object.keys(prof)})`);
const names = [];
for (const r of prof.syscalls || []) {
  ok(r.action === "SCMP_ACT_ALLOW" && !r.args && Array.isArray(r.names),
     `profile rules are plain allow lists (${JSON.stringify(r).slice(0, 80)})`);
  names.push(...r.names);
}
ok(new Set(names).size === names.length, "profile lists each syscall once");
for (const n of ["io_uring_setup", "io_uring_enter", "io_uring_register"])
  ok(names.includes(n), `profile allows ${n}`);
const never = ["mount", "umount2", "ptrace", "bpf", "kexec_load", "init_module", "finit_module",
  "delete_module", "reboot", "swapon", "pivot_root", "chroot", "unshare", "setns", "keyctl",
  "add_key", "perf_event_open", "process_vm_readv", "process_vm_writev", "userfaultfd",
  "open_by_handle_at", "personality", "fork", "vfork", "kill"];
const bad = never.filter((n) => names.includes(n));
ok(bad.length === 0, `profile allows nothing weir never needs (found: ${bad.join(" ")})`);
console.log(`seccomp: ${passed} passed`);
