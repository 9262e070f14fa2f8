#!/usr/bin/env node
// render.mjs — an offline renderer for the subset of kustomize that k8s/ uses.
//
//   node tests/k8s/render.mjs DIR        prints what `kubectl kustomize DIR` prints
//
// Why it exists: Debian 12 has no kustomize, its kubernetes-client (kubectl
// 1.20) carries kustomize v2.0.3 which predates `labels:` and `patches:`, and
// the npm packages named kubectl/kubectl-cli are a placeholder and a
// download-at-install wrapper. The test suite must render k8s/ on a fresh
// machine with Debian packages and the npm registry only, so it renders with
// this file and, where a kubectl with kustomize v4+ is installed, checks that
// the two agree object for object (run.sh).
//
// The subset, implemented after kustomize v5's documented behaviour:
//   resources   files (inside the kustomization root) and directories holding
//               a kustomization (rendered first, like kustomize's bases)
//   namespace   set on every namespaced object
//   labels      [{pairs, includeTemplates}] (includeSelectors: false only)
//   patches     [{path | patch, target?}]: strategic merge (maps merge, null
//               deletes, `$patch: replace|delete`, lists of containers, env,
//               ports, volumes, volumeMounts merged by their merge keys) or
//               JSON 6902 (a YAML list of operations; needs a target)
//   replacements [{source: {kind, name, namespace?, fieldPath}, targets:
//               [{select, fieldPaths, options: {delimiter, index}}]}]: run
//               last, like kustomize; fieldPaths are dotted with `\.` for a
//               dot inside a key; with a delimiter the target string is split
//               on it and only part `index` replaced (index < 0 prepends,
//               past the end appends), as kustomize's replacement filter does
//   output      kustomize's default "legacy" order, map keys sorted
// Anything outside it is an error that names the field: this renderer never
// silently renders something kustomize would render differently.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { YAML_OPTS } from "./yamlio.mjs";

// kustomize reads its inputs differently (kyaml): YAML 1.1 numbers (0755,
// 0b101, 1_000) but only true/false as booleans (yes, on, y stay strings),
// a:b:c is a string, and unquoted timestamps or .inf/.nan make it fail.
// render.mjs reads its inputs the same way, refusing what kustomize refuses.
const rejectTag = (tag, test, what) => ({
  tag, test, default: true, identify: () => false,
  resolve: (src) => fail(`unquoted ${what} ${JSON.stringify(src)}: kustomize cannot render it; quote it`),
});
const RENDER_PARSE_OPTS = {
  ...YAML_OPTS,
  customTags: (tags) => [
    ...tags.filter((t) => !t.tag.endsWith(":bool") && !t.tag.endsWith(":timestamp") && t.format !== "TIME" &&
      !(t.tag.endsWith(":float") && String(t.test).includes("inf"))),
    { tag: "tag:yaml.org,2002:bool", default: true, test: /^(?:[Tt]rue|TRUE)$/, identify: (v) => typeof v === "boolean", resolve: () => true },
    { tag: "tag:yaml.org,2002:bool", default: true, test: /^(?:[Ff]alse|FALSE)$/, identify: () => false, resolve: () => false },
    { tag: "tag:yaml.org,2002:int", default: true, test: /^[-+]?0o[0-7_]+$/, identify: () => false,
      resolve: (s) => (s.startsWith("-") ? -1 : 1) * parseInt(s.replace(/^[-+]?0o/, "").replace(/_/g, ""), 8) },
    rejectTag("tag:yaml.org,2002:float", /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/, "infinity/NaN"),
    rejectTag("tag:yaml.org,2002:timestamp", /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:t|T|[ \t]+)[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?(?:[ \t]*(?:Z|[-+][012]?[0-9](?::[0-9]{2})?))?)?$/, "timestamp"),
  ],
};

export class RenderError extends Error {}
const fail = (msg) => { throw new RenderError(msg); };
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const clone = (v) => structuredClone(v);

// Parse every document of a YAML text; YAML errors name the file.
export function parseDocs(text, file, opts = RENDER_PARSE_OPTS) {
  const out = [];
  for (const d of YAML.parseAllDocuments(text, opts)) {
    if (d.errors.length) fail(`${file}: ${d.errors.map((e) => e.message).join("; ")}`);
    let v;
    try { v = d.toJS(); } catch (e) { if (e instanceof RenderError) fail(`${file}: ${e.message}`); throw e; }
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

const KUSTOMIZATION_NAMES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const SUPPORTED_FIELDS = new Set(["apiVersion", "kind", "resources", "namespace", "labels", "patches",
  "replacements"]);
// Kinds whose namespace and label handling below is kustomize's exactly.
const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);
const SUPPORTED_KINDS = new Set([...WORKLOADS, "ConfigMap", "Secret", "Service", "ServiceAccount",
  "PodDisruptionBudget", "Namespace", "ServiceMonitor"]);
const CLUSTER_SCOPED = new Set(["Namespace"]);

function kustomizationFile(dir) {
  for (const n of KUSTOMIZATION_NAMES) {
    const p = path.join(dir, n);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function splitApiVersion(apiVersion) {
  return apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
}

export function resId(o) {
  return `${o.apiVersion} ${o.kind} ${o.metadata?.namespace ?? "~"}/${o.metadata?.name}`;
}

// Render the kustomization in dir; returns the objects (unsorted).
function build(dir, stack) {
  const real = fs.realpathSync(dir);
  if (stack.includes(real)) fail(`cycle: ${real} includes itself`);
  for (const s of stack)
    if (s.startsWith(real + path.sep)) fail(`cycle detected: candidate root '${real}' contains visited root '${s}'`);
  const kfile = kustomizationFile(dir);
  if (!kfile) fail(`${dir}: no kustomization.yaml`);
  const docs = parseDocs(fs.readFileSync(kfile, "utf8"), kfile);
  if (docs.length !== 1 || !isObj(docs[0])) fail(`${kfile}: must hold one map`);
  const k = docs[0];
  for (const f of Object.keys(k))
    if (!SUPPORTED_FIELDS.has(f)) fail(`${kfile}: field "${f}" is outside what render.mjs implements (use kubectl kustomize)`);
  if (k.kind !== undefined && k.kind !== "Kustomization") fail(`${kfile}: kind must be Kustomization`);

  let objs = [];
  const seen = new Map();
  for (const r of k.resources ?? []) {
    if (typeof r !== "string") fail(`${kfile}: resources entries must be paths`);
    if (/^[a-z]+:\/\//.test(r)) fail(`${kfile}: remote resource ${r} is not supported`);
    const p = path.resolve(dir, r);
    if (!fs.existsSync(p)) fail(`${kfile}: resource ${r} does not exist`);
    let got;
    if (fs.statSync(p).isDirectory()) got = build(p, [...stack, real]);
    else {
      inRoot(real, p, kfile);
      got = parseDocs(fs.readFileSync(p, "utf8"), p);
    }
    for (const o of got) {
      if (!isObj(o) || typeof o.apiVersion !== "string" || typeof o.kind !== "string" || typeof o.metadata?.name !== "string")
        fail(`${p}: every document must have apiVersion, kind and metadata.name`);
      if (!SUPPORTED_KINDS.has(o.kind)) fail(`${p}: kind ${o.kind} is outside what render.mjs implements (use kubectl kustomize)`);
      const id = resId(o);
      if (seen.has(id)) fail(`${kfile}: may not add resource with an already registered id: ${id}`);
      seen.set(id, true);
      objs.push(o);
    }
  }

  // kustomize's transformer order for these fields: patches, then namespace, then labels.
  for (const [i, p] of (k.patches ?? []).entries()) applyPatchEntry(objs, p, dir, real, `${kfile}: patches[${i}]`);
  if (k.namespace !== undefined) {
    if (typeof k.namespace !== "string") fail(`${kfile}: namespace must be a string`);
    for (const o of objs) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  for (const [i, l] of (k.labels ?? []).entries()) applyLabels(objs, l, `${kfile}: labels[${i}]`);
  // ... and replacements after all of them.
  for (const [i, r] of (k.replacements ?? []).entries()) applyReplacement(objs, r, `${kfile}: replacements[${i}]`);
  return objs;
}

// ---- replacements ------------------------------------------------------------

// "data.weir\\.yaml" -> ["data", "weir.yaml"] (kustomize's escaped dots).
function fieldPath(fp, where) {
  if (typeof fp !== "string" || !fp) fail(`${where}: fieldPath must be a non-empty string`);
  if (/[\[\]]/.test(fp)) fail(`${where}: fieldPath ${fp}: list selectors are not implemented`);
  return fp.split(/(?<!\\)\./).map((p) => p.replace(/\\\./g, "."));
}

function applyReplacement(objs, r, where) {
  if (!isObj(r)) fail(`${where}: must be a map`);
  for (const f of Object.keys(r)) if (!["source", "targets"].includes(f)) fail(`${where}: field "${f}" is not implemented`);
  const src = r.source;
  if (!isObj(src) || typeof src.fieldPath !== "string") fail(`${where}: source needs kind, name and fieldPath`);
  for (const f of Object.keys(src))
    if (!["kind", "name", "namespace", "fieldPath"].includes(f)) fail(`${where}: source.${f} is not implemented`);
  const { fieldPath: sfp, ...ssel } = src;
  const hits = select(objs, ssel, `${where}: source`);
  if (hits.length !== 1) fail(`${where}: source ${JSON.stringify(ssel)} matches ${hits.length} resources, not one`);
  let value = objs[hits[0]];
  for (const part of fieldPath(sfp, `${where}: source`)) {
    value = isObj(value) ? value[part] : undefined;
    if (value === undefined) fail(`${where}: source field ${sfp} not found`);
  }
  if (isObj(value) || Array.isArray(value)) fail(`${where}: source ${sfp} is not a scalar (not implemented)`);
  if (!Array.isArray(r.targets)) fail(`${where}: targets must be a list`);
  for (const [ti, t] of r.targets.entries()) {
    const tw = `${where}: targets[${ti}]`;
    if (!isObj(t)) fail(`${tw}: must be a map`);
    for (const f of Object.keys(t))
      if (!["select", "fieldPaths", "options"].includes(f)) fail(`${tw}: field "${f}" is not implemented`);
    const opts = t.options ?? {};
    for (const f of Object.keys(opts))
      if (!["delimiter", "index"].includes(f)) fail(`${tw}: options.${f} is not implemented`);
    for (const i of select(objs, t.select, `${tw}: select`)) {
      for (const fp of t.fieldPaths ?? []) {
        const parts = fieldPath(fp, tw);
        let node = objs[i];
        for (const part of parts.slice(0, -1)) {
          node = isObj(node) ? node[part] : undefined;
          if (!isObj(node)) fail(`${tw}: field ${fp} not found in ${resId(objs[i])}`);
        }
        const last = parts[parts.length - 1];
        if (!(last in node)) fail(`${tw}: field ${fp} not found in ${resId(objs[i])}`);
        if (opts.delimiter !== undefined && opts.delimiter !== "") {
          if (typeof node[last] !== "string") fail(`${tw}: delimiter option can only be used with scalar nodes`);
          const tv = node[last].split(opts.delimiter);
          const idx = opts.index ?? 0;
          const v = String(value);
          if (idx < 0) tv.unshift(v);
          else if (idx >= tv.length) tv.push(v);
          else tv[idx] = v;
          node[last] = tv.join(opts.delimiter);
        } else {
          node[last] = value;
        }
      }
    }
  }
}

function inRoot(root, file, where) {
  const rel = path.relative(root, fs.realpathSync(file));
  if (rel.startsWith("..") || path.isAbsolute(rel))
    fail(`${where}: security; file '${file}' is not in or below '${root}'`);
}

function applyLabels(objs, l, where) {
  if (!isObj(l) || !isObj(l.pairs)) fail(`${where}: needs pairs`);
  for (const f of Object.keys(l))
    if (!["pairs", "includeSelectors", "includeTemplates"].includes(f)) fail(`${where}: field "${f}" is not implemented`);
  if (l.includeSelectors) fail(`${where}: includeSelectors is not implemented (selectors are immutable; do not)`);
  for (const [key, v] of Object.entries(l.pairs)) if (typeof v !== "string") fail(`${where}: label ${key} must be a string`);
  const put = (meta) => { meta.labels = { ...(meta.labels ?? {}), ...l.pairs }; };
  for (const o of objs) {
    put(o.metadata);
    if (l.includeTemplates && WORKLOADS.has(o.kind)) {
      o.spec ??= {};
      o.spec.template ??= {};
      o.spec.template.metadata ??= {};
      put(o.spec.template.metadata);
      if (o.kind === "StatefulSet")
        for (const t of o.spec.volumeClaimTemplates ?? []) { t.metadata ??= {}; put(t.metadata); }
    }
  }
}

// ---- patches ---------------------------------------------------------------

function applyPatchEntry(objs, p, dir, root, where) {
  if (!isObj(p)) fail(`${where}: must be a map`);
  for (const f of Object.keys(p)) if (!["path", "patch", "target"].includes(f)) fail(`${where}: field "${f}" is not implemented`);
  if ((p.path === undefined) === (p.patch === undefined)) fail(`${where}: needs exactly one of path and patch`);
  let text, src = where;
  if (p.path !== undefined) {
    const f = path.resolve(dir, p.path);
    inRoot(root, f, where);
    text = fs.readFileSync(f, "utf8");
    src = f;
  } else text = p.patch;
  const docs = parseDocs(text, src);
  if (docs.length === 1 && Array.isArray(docs[0])) {
    if (!p.target) fail(`${where}: a JSON 6902 patch needs a target`);
    const hits = select(objs, p.target, where);
    for (const i of hits) objs[i] = applyJson6902(objs[i], docs[0], `${src} on ${resId(objs[i])}`);
    return;
  }
  for (const patch of docs) {
    if (!isObj(patch)) fail(`${src}: a strategic-merge patch must be a map`);
    let hits;
    if (p.target) hits = select(objs, p.target, where);
    else {
      const t = { kind: patch.kind, name: patch.metadata?.name };
      if (!t.kind || !t.name) fail(`${src}: a strategic-merge patch without target needs kind and metadata.name`);
      const [group, version] = splitApiVersion(patch.apiVersion ?? "");
      if (patch.apiVersion) Object.assign(t, { group, version });
      if (patch.metadata.namespace) t.namespace = patch.metadata.namespace;
      hits = select(objs, t, where);
      if (hits.length !== 1) fail(`${src}: no unique target for patch ${patch.kind}/${patch.metadata.name}`);
    }
    for (const i of hits) {
      const body = clone(patch);
      if (p.target) { // kustomize patches each target as if the patch named it
        body.apiVersion = objs[i].apiVersion; body.kind = objs[i].kind;
        body.metadata = { ...(body.metadata ?? {}), name: objs[i].metadata.name };
        if (objs[i].metadata.namespace) body.metadata.namespace = objs[i].metadata.namespace;
      }
      objs[i] = strategicMerge(objs[i], body, "");
    }
  }
}

function select(objs, t, where) {
  if (!isObj(t)) fail(`${where}: target must be a map`);
  for (const f of Object.keys(t))
    if (!["group", "version", "kind", "name", "namespace"].includes(f)) fail(`${where}: target.${f} is not implemented`);
  const re = (s) => new RegExp(`^(?:${s})$`);
  const hits = [];
  objs.forEach((o, i) => {
    const [group, version] = splitApiVersion(o.apiVersion);
    if (t.group !== undefined && !re(t.group).test(group)) return;
    if (t.version !== undefined && !re(t.version).test(version)) return;
    if (t.kind !== undefined && !re(t.kind).test(o.kind)) return;
    if (t.name !== undefined && !re(t.name).test(o.metadata.name)) return;
    if (t.namespace !== undefined && !re(t.namespace).test(o.metadata.namespace ?? "")) return;
    hits.push(i);
  });
  if (!hits.length) fail(`${where}: target ${JSON.stringify(t)} matches no resource`);
  return hits;
}

// The merge keys of the Kubernetes types' lists (patchMergeKey in the API);
// every other list is replaced whole, as strategic merge does.
function mergeKey(pathStr, field) {
  if (["containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets"].includes(field)) return "name";
  if (field === "volumeMounts") return "mountPath";
  if (field === "ports") return /(containers|initContainers|ephemeralContainers)\[\]$/.test(pathStr) ? "containerPort" : "port";
  return null;
}

export function strategicMerge(base, patch, at) {
  if (!isObj(patch)) return clone(patch);
  const directive = patch.$patch;
  if (directive === "replace") { const p = clone(patch); delete p.$patch; return p; }
  if (directive === "delete") return undefined;
  if (directive !== undefined) fail(`strategic merge: $patch: ${directive} is not implemented (at ${at || "/"})`);
  const out = isObj(base) ? clone(base) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) fail(`strategic merge: directive ${k} is not implemented (at ${at || "/"})`);
    if (v === null) { delete out[k]; continue; }
    if (Array.isArray(v)) {
      const mk = mergeKey(at, k);
      out[k] = mk && Array.isArray(out[k]) ? mergeList(out[k], v, mk, `${at}.${k}[]`) : clone(v);
      continue;
    }
    if (isObj(v)) {
      const m = strategicMerge(out[k], v, `${at}.${k}`);
      if (m === undefined) delete out[k]; else out[k] = m;
      continue;
    }
    out[k] = v;
  }
  return out;
}

// Like kustomize (kyaml), the merged list holds the patch's items first, in
// the patch's order (each merged with the base item of the same key), then
// the base items the patch does not name, in their order.
function mergeList(base, patch, key, at) {
  const out = [], named = new Set();
  for (const item of patch) {
    if (!isObj(item) || item[key] === undefined) fail(`strategic merge: list item without ${key} at ${at}`);
    if (named.has(item[key])) fail(`strategic merge: ${key} ${item[key]} twice at ${at}`);
    named.add(item[key]);
    const m = strategicMerge(base.find((x) => isObj(x) && x[key] === item[key]) ?? {}, item, at);
    if (m !== undefined) out.push(m);
  }
  for (const x of base) if (!(isObj(x) && named.has(x[key]))) out.push(clone(x));
  return out;
}

// RFC 6902 over a plain JS value; returns the patched copy.
export function applyJson6902(doc, ops, where) {
  let root = clone(doc);
  const ptr = (p) => {
    if (typeof p !== "string" || (p !== "" && !p.startsWith("/"))) fail(`${where}: bad JSON pointer ${JSON.stringify(p)}`);
    return p === "" ? [] : p.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  };
  const parentOf = (toks, op) => {
    let cur = root;
    for (const t of toks.slice(0, -1)) {
      cur = Array.isArray(cur) ? cur[idx(cur, t, false, op)] : isObj(cur) ? cur[t] : undefined;
      if (cur === undefined) fail(`${where}: ${op}: path does not exist`);
    }
    return cur;
  };
  const idx = (arr, t, forAdd, op) => {
    if (forAdd && t === "-") return arr.length;
    if (!/^(0|[1-9][0-9]*)$/.test(t)) fail(`${where}: ${op}: bad array index ${t}`);
    const i = Number(t);
    if (i > arr.length || (!forAdd && i === arr.length)) fail(`${where}: ${op}: index ${i} out of range`);
    return i;
  };
  const get = (toks, op) => {
    if (!toks.length) return root;
    const par = parentOf(toks, op), last = toks.at(-1);
    const v = Array.isArray(par) ? par[idx(par, last, false, op)] : isObj(par) ? par[last] : undefined;
    if (v === undefined) fail(`${where}: ${op}: path /${toks.join("/")} does not exist`);
    return v;
  };
  const add = (toks, val, op) => {
    if (!toks.length) { root = val; return; }
    const par = parentOf(toks, op), last = toks.at(-1);
    if (Array.isArray(par)) par.splice(idx(par, last, true, op), 0, val);
    else if (isObj(par)) par[last] = val;
    else fail(`${where}: ${op}: parent is not a container`);
  };
  const remove = (toks, op) => {
    get(toks, op);
    const par = parentOf(toks, op), last = toks.at(-1);
    if (Array.isArray(par)) par.splice(idx(par, last, false, op), 1); else delete par[last];
  };
  if (!Array.isArray(ops)) fail(`${where}: a JSON 6902 patch is a list of operations`);
  for (const o of ops) {
    if (!isObj(o)) fail(`${where}: operation must be a map`);
    const toks = ptr(o.path);
    switch (o.op) {
      case "add": add(toks, clone(o.value), "add"); break;
      case "remove": remove(toks, "remove"); break;
      case "replace": get(toks, "replace"); remove(toks, "replace"); add(toks, clone(o.value), "replace"); break;
      case "move": { const v = get(ptr(o.from), "move"); remove(ptr(o.from), "move"); add(toks, v, "move"); break; }
      case "copy": add(toks, clone(get(ptr(o.from), "copy")), "copy"); break;
      case "test":
        if (JSON.stringify(get(toks, "test")) !== JSON.stringify(o.value)) fail(`${where}: test failed at ${o.path}`);
        break;
      default: fail(`${where}: unknown op ${JSON.stringify(o.op)}`);
    }
  }
  return root;
}

// ---- output ------------------------------------------------------------------

// kustomize's legacy order: these kinds first, in this order; webhooks last;
// then by group/version/kind, namespace, name.
const ORDER_FIRST = ["Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
  "ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
  "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
  "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"];
const ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];
function kindRank(kind) {
  const f = ORDER_FIRST.indexOf(kind);
  if (f >= 0) return f - ORDER_FIRST.length;
  const l = ORDER_LAST.indexOf(kind);
  return l >= 0 ? l + 1 : 0;
}
function gvkString(o) {
  const [g, v] = splitApiVersion(o.apiVersion);
  return `${g ? g + "_" : ""}${v}_${o.kind}`;
}
export function legacySort(objs) {
  const key = (o) => [kindRank(o.kind), gvkString(o), o.metadata.namespace ?? "", o.metadata.name];
  return objs
    .map((o, i) => [key(o), i, o])
    .sort(([a, ia], [b, ib]) => {
      for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) return a[j] < b[j] ? -1 : 1;
      return ia - ib;
    })
    .map(([, , o]) => o);
}

export function render(dir) {
  return legacySort(build(path.resolve(dir), []));
}

// Written so that YAML 1.1, as `kubectl apply` and the checks read it
// (yamlio.mjs), reads it back unchanged: ambiguous strings ("on", "0755") quoted.
export function toYaml(objs) {
  return objs.map((o) => YAML.stringify(o, { ...YAML_OPTS, sortMapEntries: true, lineWidth: 0, indentSeq: false })).join("---\n");
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.length !== 3) {
    console.error("usage: render.mjs KUSTOMIZATION_DIR");
    process.exit(2);
  }
  try {
    process.stdout.write(toYaml(render(process.argv[2])));
  } catch (e) {
    if (!(e instanceof RenderError)) throw e;
    console.error(`render.mjs: ${e.message}`);
    process.exit(1);
  }
}
