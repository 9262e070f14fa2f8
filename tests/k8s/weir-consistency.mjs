#!/usr/bin/env node
// weir-consistency.mjs — does a rendered k8s/ bundle fit weir's own config?
//
//   node tests/k8s/weir-consistency.mjs RENDERED.yaml
//
// k8s-validate.mjs checks that each object is valid Kubernetes; this checks
// what no schema knows: that the weir Deployment, its ConfigMap and the app's
// Services agree with the weir.yaml inside that ConfigMap. Each rule below is
// a mistake that would pass `kubectl apply` and break the demo at run time:
//  - the config is mounted as a directory from a ConfigMap of the bundle that
//    has the file; never with subPath (a subPath mount is never updated, so
//    edits to the ConfigMap would silently never reach weir);
//  - each `listen` address is a container port and the Service in front targets one;
//  - `admin` is the port the probes (/healthz) and Prometheus annotations use;
//  - the control socket and state file are on a writable volume (the root
//    filesystem is read-only);
//  - every `discover:` name is a headless Service of the bundle, written as
//    its short name (resolved in weir's own namespace through the pod's
//    resolv.conf search list) or as <service>.<namespace>.svc.cluster.local,
//    and its port and the health port are container ports of the pods that
//    Service selects;
//  - weir-config's weir-split annotation (what the overlays patch) is the
//    split of its weir.yaml;
//  - a PodDisruptionBudget covers the weir pods;
//  - fleet.peers names a headless Service that selects the weir pods, on the
//    admin port; fleet.key_file is on a Secret volume others cannot read;
//  - every pod's prometheus.io/port annotation names one of its ports.
// Prints `ERROR where: message` lines and `weir-consistency: N passed, N failed`.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { parseText } from "./yamlio.mjs";

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]);

function podsOf(objs) {
  return objs.filter((o) => WORKLOADS.has(o.kind) && isObj(o.spec?.template)).map((o) => ({
    id: `${o.kind}/${o.metadata?.name}`, ns: o.metadata?.namespace ?? "", obj: o,
    labels: o.spec.template.metadata?.labels ?? {}, annotations: o.spec.template.metadata?.annotations ?? {},
    spec: o.spec.template.spec ?? {},
  }));
}
const selects = (sel, labels) => isObj(sel) && Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);
const containerPorts = (c) => (Array.isArray(c?.ports) ? c.ports.filter(isObj) : []);
const allPorts = (pod) => (pod.spec.containers ?? []).flatMap(containerPorts);
// A port reference (number or name) as a number, in a container or pod.
function resolvePort(ref, ports) {
  if (typeof ref === "number") return ref;
  return ports.find((p) => p.name === ref)?.containerPort;
}
function hostPort(s) {
  const m = typeof s === "string" && /^(?:\[([^\]]+)\]|([^:]+)):([0-9]+)$/.exec(s);
  return m ? { host: m[1] ?? m[2], port: Number(m[3]) } : null;
}
// Parse durations like weir does ("250ms", "2s", "1m") into ms; NaN if not one.
function ms(d) {
  const m = typeof d === "string" && /^([0-9]+)(ms|s|m)$/.exec(d);
  return m ? Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]] : NaN;
}

export function checkWeir(objs) {
  const errors = [];
  let checks = 0;
  const check = (ok, where, msg) => { checks++; if (!ok) errors.push({ where, msg }); return ok; };
  const pods = podsOf(objs);
  const configMaps = new Map(objs.filter((o) => o.kind === "ConfigMap").map((o) => [`${o.metadata?.namespace ?? ""}/${o.metadata?.name}`, o]));
  const services = objs.filter((o) => o.kind === "Service");

  const weirs = pods.flatMap((p) => (p.spec.containers ?? []).filter((c) => path.basename(c?.command?.[0] ?? "") === "weir").map((c) => ({ pod: p, c })));
  check(weirs.length > 0, "bundle", "no container runs weir (command [weir, -c, FILE])");
  for (const { pod, c } of weirs) {
    const where = `${pod.id} container ${c.name}`;
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    const ci = argv.indexOf("-c");
    if (!check(ci > 0 && typeof argv[ci + 1] === "string", where, "weir is started without -c FILE")) continue;
    const cfgPath = path.posix.normalize(argv[ci + 1]);
    const mounts = Array.isArray(c.volumeMounts) ? c.volumeMounts.filter(isObj) : [];
    const under = (p, m) => p === m.mountPath || p.startsWith(m.mountPath.replace(/\/$/, "") + "/");
    const cfgMount = mounts.filter((m) => under(cfgPath, m)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    if (!check(cfgMount, where, `the config ${cfgPath} is on no volume mount`)) continue;
    check(cfgMount.subPath === undefined && cfgMount.subPathExpr === undefined, where,
      `the config is mounted with subPath: Kubernetes never updates a subPath mount, so weir would never see ConfigMap edits; mount the directory`);
    const vol = (pod.spec.volumes ?? []).find((v) => v?.name === cfgMount.name);
    if (!check(isObj(vol?.configMap), where, `the config ${cfgPath} is not on a ConfigMap volume`)) continue;
    const cm = configMaps.get(`${pod.ns}/${vol.configMap.name}`);
    if (!check(cm, where, `ConfigMap "${vol.configMap.name}" is not in the bundle`)) continue;
    const rel = path.posix.relative(cfgMount.mountPath, cfgPath);
    const item = (vol.configMap.items ?? []).find((it) => it?.path === rel);
    const key = vol.configMap.items ? item?.key : rel;
    const text = cm.data?.[key];
    if (!check(typeof text === "string", where, `ConfigMap "${vol.configMap.name}" has no key for ${cfgPath}`)) continue;
    let cfg;
    try {
      cfg = YAML.parse(text);
    } catch (e) {
      check(false, `ConfigMap/${cm.metadata.name}.data.${key}`, `YAML: ${e.message.split("\n")[0]}`);
      continue;
    }
    const cw = `ConfigMap/${cm.metadata.name} ${key}`;
    if (!check(isObj(cfg), cw, "weir's config must be a map")) continue;

    // The overlays patch the weir-split annotation and copy it into the
    // split: the two must agree (the base's and what each overlay renders).
    const ann = cm.metadata?.annotations?.["weir-split"];
    if (ann !== undefined) {
      let asSplit;
      try { asSplit = YAML.parse(ann); } catch { asSplit = undefined; }
      check(JSON.stringify(asSplit) === JSON.stringify(cfg.split), `ConfigMap/${cm.metadata.name}`,
        `annotation weir-split ${JSON.stringify(ann)} is not weir.yaml's split ${JSON.stringify(cfg.split)}: an overlay would not change what it seems to`);
    }

    // Voluntary disruptions (node drains) must leave a weir replica up.
    const pdbs = objs.filter((o) => o.kind === "PodDisruptionBudget" && (o.metadata?.namespace ?? "") === pod.ns &&
      isObj(o.spec?.selector?.matchLabels) && selects(o.spec.selector.matchLabels, pod.labels));
    check(pdbs.length > 0, pod.id, "no PodDisruptionBudget selects the weir pods: a node drain may take every replica at once");
    const ports = containerPorts(c);
    const portNums = new Set(ports.map((p) => p.containerPort));

    // listen: one host:port or a list of them (or {address, tls}): each a
    // container port, and every Service port that selects this pod targets one.
    const listenItems = Array.isArray(cfg.listen) ? cfg.listen : [cfg.listen];
    const listens = listenItems.map((l) => hostPort(isObj(l) ? l.address : l));
    if (check(listens.length > 0 && listens.every((l) => l), cw, `listen ${JSON.stringify(cfg.listen)} is not host:port (or a list of them)`)) {
      for (const listen of listens) {
        check(listen.host === "0.0.0.0" || listen.host === "::", cw, `listen ${listen.host}:${listen.port} is not reachable from outside the pod (use 0.0.0.0)`);
        check(portNums.has(listen.port), where, `listen port ${listen.port} is not a containerPort`);
      }
      const listenPorts = new Set(listens.map((l) => l.port));
      // The fleet's peers Service selects the weir pods too, on the admin port.
      const peersHost = isObj(cfg.fleet) ? hostPort(cfg.fleet.peers)?.host : undefined;
      const isPeers = (s) => typeof peersHost === "string" && peersHost.split(".")[0] === s.metadata?.name;
      const fronts = services.filter((s) => (s.metadata?.namespace ?? "") === pod.ns && selects(s.spec?.selector, pod.labels) && !isPeers(s));
      check(fronts.length > 0, where, "no Service selects the weir pods");
      const adminPort = hostPort(cfg.admin)?.port;
      for (const s of fronts)
        for (const sp of s.spec?.ports ?? [])
          // A port onto the admin listener (overlays/monitoring's weir-metrics) is not a way in.
          if (resolvePort(sp.targetPort ?? sp.port, ports) !== adminPort || sp.name !== "admin")
            check(listenPorts.has(resolvePort(sp.targetPort ?? sp.port, ports)), `Service/${s.metadata.name}`,
              `port ${sp.port} targets ${JSON.stringify(sp.targetPort ?? sp.port)}, not one of weir's listen ports ${[...listenPorts].join(", ")}`);
    }

    // admin: the probes' and Prometheus' port.
    const admin = hostPort(cfg.admin);
    if (check(admin, cw, `admin ${JSON.stringify(cfg.admin)} is not host:port (the probes need it)`)) {
      check(portNums.has(admin.port), where, `admin port ${admin.port} is not a containerPort`);
      for (const probe of ["readinessProbe", "livenessProbe"]) {
        const hg = c[probe]?.httpGet;
        if (check(hg, where, `${probe} is not an httpGet on weir's admin /healthz`))
          check(resolvePort(hg.port, ports) === admin.port && hg.path === "/healthz", where,
            `${probe} asks ${hg.path} on port ${JSON.stringify(hg.port)}, not /healthz on the admin port ${admin.port}`);
      }
      const an = pod.annotations;
      check(an["prometheus.io/scrape"] === "true" && an["prometheus.io/port"] === String(admin.port) &&
        (an["prometheus.io/path"] ?? "/metrics") === "/metrics", pod.id,
        `Prometheus annotations must point at the admin port ${admin.port} /metrics (have ${JSON.stringify(an)})`);
    }

    // fleet: peers is a headless Service of these pods on the admin port;
    // the key is on a Secret volume.
    if (isObj(cfg.fleet) && typeof cfg.fleet.peers === "string") {
      const fw = `${cw} fleet`;
      const hp = hostPort(cfg.fleet.peers);
      // A short name resolves in weir's own namespace (the pod's search list), as for discover.
      const m = !hp ? null : /^[a-z0-9-]+$/.test(hp.host) ? [hp.host, hp.host, pod.ns]
        : /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?\.?$/.exec(hp.host);
      if (check(m, fw, `fleet.peers ${JSON.stringify(cfg.fleet.peers)} is not <service>:<port> or <service>.<namespace>.svc.cluster.local:<port>`)) {
        const svc = services.find((x) => x.metadata?.name === m[1] && (x.metadata?.namespace ?? "") === m[2]);
        if (check(svc, fw, `fleet.peers names Service ${m[1]} in namespace ${m[2]}, which the bundle does not have`)) {
          check(svc.spec?.clusterIP === "None", fw,
            `fleet.peers names Service ${m[1]}, which is not headless (clusterIP: None): the replicas would not find each other`);
          check(m[2] === pod.ns && selects(svc.spec?.selector, pod.labels), fw,
            `fleet.peers names Service ${m[1]}, which does not select the weir pods`);
          check(admin && hp.port === admin.port, fw,
            `fleet.peers port ${hp.port} is not weir's admin port ${admin?.port} (peers talk to each other's admin listener)`);
        }
      }
      const kf = typeof cfg.fleet.key_file === "string" ? cfg.fleet.key_file : "";
      const km = mounts.filter((x) => under(kf, x)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
      const kv = km && (pod.spec.volumes ?? []).find((x) => x?.name === km.name);
      check(kf && kv && isObj(kv.secret), where, `fleet.key_file ${JSON.stringify(kf)} is not on a Secret volume`);
      const mode = kv?.secret?.defaultMode;
      check(mode === undefined || (mode & 0o027) === 0, where,
        `the fleet key's Secret volume mode ${mode?.toString(8)} lets others read it (weir warns)`);
    }

    // control socket and state file: on a writable volume (root fs read-only).
    const control = typeof cfg.control === "string" ? cfg.control : "/run/weir/weir.sock";
    const state = typeof cfg.state === "string" ? cfg.state : `${control}.state`;
    for (const [what, p] of [["control socket", control], ["state file", state]]) {
      const m = mounts.filter((x) => under(p, x)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
      const v = m && (pod.spec.volumes ?? []).find((x) => x?.name === m.name);
      check(m && !m.readOnly && v && !v.configMap && !v.secret, where,
        `the ${what} ${p} is not on a writable volume (the root filesystem is read-only)`);
    }

    // versions: discover names a headless Service of the bundle; ports exist.
    for (const [name, ver] of Object.entries(isObj(cfg.versions) ? cfg.versions : {})) {
      const vw = `${cw} versions.${name}`;
      if (!isObj(ver) || ver.discover === undefined) continue;
      const hp = hostPort(ver.discover);
      const short = hp && /^[a-z0-9-]+$/.test(hp.host);
      const m = !hp ? null : short ? [hp.host, hp.host, pod.ns]
        : /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?\.?$/.exec(hp.host);
      if (!check(m, vw, `discover ${JSON.stringify(ver.discover)} is not <service>:<port> or <service>.<namespace>.svc.cluster.local:<port>`)) continue;
      const svc = services.find((s) => s.metadata?.name === m[1] && (s.metadata?.namespace ?? "") === m[2]);
      if (!check(svc, vw, `discover names Service ${m[1]} in ${short ? "weir's own namespace" : `namespace ${m[2]}`}, which the bundle does not have`)) continue;
      check(svc.spec?.clusterIP === "None", vw,
        `discover names Service ${m[1]}, which is not headless (clusterIP: None): its DNS name is one virtual IP, not the pods`);
      const targets = pods.filter((p) => p.ns === m[2] && selects(svc.spec?.selector, p.labels));
      if (!check(targets.length, vw, `Service ${m[1]} selects no pods`)) continue;
      for (const t of targets) {
        const tp = new Set(allPorts(t).map((p) => p.containerPort));
        check(tp.has(hp.port), vw, `discover port ${hp.port} is not a containerPort of ${t.id}`);
        if (isObj(ver.health)) {
          const hport = ver.health.port ?? hp.port;
          check(tp.has(hport), vw, `health port ${hport} is not a containerPort of ${t.id}`);
          const iv = ms(ver.health.interval ?? "2s"), to = ms(ver.health.timeout ?? "1s");
          check(!(to >= iv), vw, `health timeout ${ver.health.timeout} is not shorter than the interval ${ver.health.interval}`);
        }
      }
    }
  }

  // Every pod's Prometheus port annotation names one of its ports.
  for (const p of pods) {
    const port = p.annotations["prometheus.io/port"];
    if (port === undefined) continue;
    check(allPorts(p).some((x) => String(x.containerPort) === String(port)), p.id,
      `prometheus.io/port "${port}" is not a containerPort of the pod`);
  }
  return { errors, checks };
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.length !== 3) {
    console.error("usage: weir-consistency.mjs RENDERED.yaml");
    process.exit(2);
  }
  const file = process.argv[2];
  const docs = parseText(fs.readFileSync(file === "-" ? 0 : file, "utf8"), file);
  const bad = docs.filter((d) => d.yamlErrors);
  for (const d of bad) console.log(`ERROR ${d.where}: YAML: ${d.yamlErrors.join("; ")}`);
  const { errors, checks } = checkWeir(docs.filter((d) => !d.yamlErrors).map((d) => d.obj).filter(isObj));
  for (const e of errors) console.log(`ERROR ${e.where}: ${e.msg}`);
  console.log(`weir-consistency: ${checks - errors.length} passed, ${errors.length + bad.length} failed`);
  process.exit(errors.length || bad.length ? 1 : 0);
}
