#!/usr/bin/env node
// k8s-validate.mjs — strict offline validation of Kubernetes manifests.
//
//   node tests/k8s/k8s-validate.mjs FILE|DIR|- ...
//
// Prints one `ERROR where: message` line per problem and a closing
// `k8s-validate: N passed, N failed, N skipped` line; exits 1 if anything is
// wrong. All the documents given form one bundle (the cross-object checks
// look at all of them together, as a `kubectl apply -k` of them would).
//
// Four layers, each catching what the others cannot:
//  1. Shape: every field must exist in the Kubernetes OpenAPI types
//     (@kubernetes/client-node's generated models, release-1.36): catches
//     misspelt and misplaced fields, which kubectl --validate=strict refuses.
//  2. Schema: kubernetes-models' JSON schemas: scalar types, required fields,
//     enums, formats (quantities, int-or-string).
//  3. API-server rules the OpenAPI schema does not carry (from the API
//     server's validation): object, label and port names, port ranges,
//     required image, selector against template labels, unique names,
//     volume mounts naming a volume, requests not above limits, ...
//  4. Bundle: a Service must select some pod of the bundle and its named
//     targetPort must exist there; a probe's named port must exist in its
//     container; a ConfigMap or Secret volume must name one of the bundle.
// Custom resources the bundle may hold (the ServiceMonitor of
// overlays/monitoring) have no client-node model: layer 1 reads their field
// tree from the @kubernetes-models package's TypeScript declaration (the
// CRD's OpenAPI schema as types), layer 2 is that package's JSON schema.
// Adapted from ../../shared/reference/k8s-validate.mjs (layers 1-2 and part of 3).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { YAML_OPTS, parseText } from "./yamlio.mjs";
// Deep import: the package's main entry needs Node 22; the models do not.
import * as M from "@kubernetes/client-node/dist/gen/models/all.js";

const require = createRequire(import.meta.url);
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

export { YAML_OPTS, parseText };

// Read YAML files into [{where, obj}] or [{where, yamlErrors}].
export function readDocs(args) {
  const out = [];
  for (const f of expand(args)) {
    const text = fs.readFileSync(f === "-" ? 0 : f, "utf8");
    out.push(...parseText(text, f === "-" ? "<stdin>" : f));
  }
  return out;
}

function expand(args) {
  const out = [];
  for (const a of args) {
    if (a === "-") { out.push("-"); continue; }
    if (fs.statSync(a).isDirectory()) {
      for (const e of fs.readdirSync(a).sort()) {
        const p = path.join(a, e);
        if (fs.statSync(p).isDirectory()) out.push(...expand([p]));
        else if (/\.ya?ml$/.test(e)) out.push(p);
      }
    } else out.push(a);
  }
  return out;
}

// ---- names and formats (k8s.io/apimachinery/pkg/util/validation) -----------
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;

const isDns1123Label = (s) => typeof s === "string" && s.length <= 63 && DNS1123_LABEL.test(s);
const isDns1123Subdomain = (s) => typeof s === "string" && s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
const isDns1035Label = (s) => typeof s === "string" && s.length <= 63 && DNS1035_LABEL.test(s);
// IANA_SVC_NAME: what a container port's name and a named targetPort/probe port must be.
const isSvcName = (s) => typeof s === "string" && s.length >= 1 && s.length <= 15 &&
  /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s) && /[a-z]/.test(s) && !s.includes("--");
function isQualifiedName(k) {
  if (typeof k !== "string") return false;
  const parts = k.split("/");
  if (parts.length > 2) return false;
  const [prefix, name] = parts.length === 2 ? parts : [null, parts[0]];
  if (prefix !== null && !isDns1123Subdomain(prefix)) return false;
  return name.length >= 1 && name.length <= 63 && QUALIFIED_NAME.test(name);
}
const isPort = (n) => Number.isInteger(n) && n >= 1 && n <= 65535;

// Quantity ("100m", "64Mi", "2") to a number, or NaN.
const SUFFIX = { n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
export function quantity(q) {
  if (typeof q === "number") return q;
  const m = typeof q === "string" && /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec(q);
  if (!m) return NaN;
  return Number(m[1] + (m[2] ?? "")) * SUFFIX[m[3] ?? ""];
}

// ---- the validator ------------------------------------------------------------

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);

// Custom resources: "apiVersion kind" -> the @kubernetes-models module path.
const CRDS = {
  "monitoring.coreos.com/v1 ServiceMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
};

// The field tree of a @kubernetes-models declaration (.d.ts): nested
// `"key"?: {` / `Array<{` type literals become {fields: Map, any: bool}
// nodes (any: a `[key: string]` map), everything else a leaf (null).
function crdShape(module) {
  const text = fs.readFileSync(require.resolve(module).replace(/\.js$/, ".d.ts"), "utf8");
  const lines = text.split("\n");
  let i = lines.findIndex((l) => /^\s*"spec"\??: \{\s*$/.test(l));
  const root = { fields: new Map([["apiVersion", null], ["kind", null], ["metadata", "V1ObjectMeta"]]), any: false };
  const stack = [root];
  const spec = { fields: new Map(), any: false };
  root.fields.set("spec", spec);
  stack.push(spec);
  for (i++; i < lines.length && stack.length > 1; i++) {
    const l = lines[i].trim();
    let m;
    if (/^\[key: string\]/.test(l)) stack[stack.length - 1].any = true;
    else if ((m = /^"([^"]+)"\??: (?:Array<)?\{$/.exec(l))) {
      const n = { fields: new Map(), any: false };
      stack[stack.length - 1].fields.set(m[1], n);
      stack.push(n);
    } else if ((m = /^"([^"]+)"\??: /.exec(l))) stack[stack.length - 1].fields.set(m[1], null);
    else if (/^\}/.test(l)) stack.pop();
  }
  return root;
}

function checkCrdShape(v, node, where, err) {
  if (node === null || v === null || v === undefined) return;
  if (node === "V1ObjectMeta") return checkShape(v, "V1ObjectMeta", where, err);
  if (Array.isArray(v)) return v.forEach((x, i) => checkCrdShape(x, node, `${where}[${i}]`, err));
  if (!isObj(v)) return err(where, `expected an object, got ${JSON.stringify(v)}`);
  if (node.any) return;
  for (const [k, x] of Object.entries(v)) {
    if (!node.fields.has(k)) err(`${where}.${k}`, `unknown field "${k}"`);
    else checkCrdShape(x, node.fields.get(k), `${where}.${k}`, err);
  }
}

export function modelFor(apiVersion, kind) {
  const [group, ver] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  const g = group.split(".")[0];
  for (const n of [cap(g) + cap(ver) + kind, cap(ver) + kind]) if (M[n]?.getAttributeTypeMap) return n;
  return null;
}

// Pod templates of an object: [{where, meta, spec}].
function podTemplates(o, id) {
  if (o.kind === "Pod") return [{ where: `${id}.spec`, meta: o.metadata ?? {}, spec: o.spec }];
  if (WORKLOADS.has(o.kind) && isObj(o.spec?.template))
    return [{ where: `${id}.spec.template.spec`, meta: o.spec.template.metadata ?? {}, spec: o.spec.template.spec }];
  if (o.kind === "CronJob" && isObj(o.spec?.jobTemplate?.spec?.template))
    return [{ where: `${id}.spec.jobTemplate.spec.template.spec`, meta: o.spec.jobTemplate.spec.template.metadata ?? {},
      spec: o.spec.jobTemplate.spec.template.spec }];
  return [];
}

function matchesSelector(sel, labels) {
  // sel: a LabelSelector {matchLabels, matchExpressions}
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key), vals = e.values ?? [];
    if (e.operator === "In" && !(has && vals.includes(labels[e.key]))) return false;
    if (e.operator === "NotIn" && has && vals.includes(labels[e.key])) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

export function validateDocs(docs) {
  const errors = [];
  let passed = 0, failed = 0, skipped = 0;
  const objs = [];
  for (const d of docs) {
    if (d.yamlErrors) {
      failed++;
      for (const m of d.yamlErrors) errors.push({ where: d.where, msg: `YAML: ${m}` });
      continue;
    }
    const o = d.obj;
    if (o === null || o === undefined) continue;
    const errs = [];
    const err = (where, msg) => errs.push({ where, msg });
    if (!isObj(o) || typeof o.apiVersion !== "string" || typeof o.kind !== "string") {
      err(d.where, "not a Kubernetes object (apiVersion/kind missing)");
    } else if (o.apiVersion.startsWith("kustomize.config.k8s.io/")) {
      skipped++;
      continue;
    } else {
      const id = `${d.where} ${o.kind}/${o.metadata?.name}`;
      const model = modelFor(o.apiVersion, o.kind);
      const crd = CRDS[`${o.apiVersion} ${o.kind}`];
      if (crd) {
        checkCrdShape(o, crdShape(crd), id, err);
        const mod = require(crd);
        try {
          new mod[o.kind](o).validate();
        } catch (e) {
          for (const line of String(e.message).split(/, (?=data[/ ])/)) err(id, `schema: ${line}`);
        }
        checkObject(o, id, err);
        objs.push({ o, id });
      } else if (!model) err(id, `unknown apiVersion/kind ${o.apiVersion} ${o.kind} (not served by current Kubernetes)`);
      else {
        checkShape(o, model, id, err);
        checkSchema(o, id, err);
        checkObject(o, id, err);
        objs.push({ o, id });
      }
    }
    if (errs.length) failed++; else passed++;
    errors.push(...errs);
  }
  // A bundle error fails the object it is reported on (counted once).
  const okBefore = new Set(objs.filter(({ id }) => !errors.some((e) => e.where.startsWith(id))).map(({ id }) => id));
  const newlyFailed = new Set();
  checkBundle(objs, (id, at, msg) => {
    errors.push({ where: id + at, msg });
    if (okBefore.has(id)) newlyFailed.add(id);
  });
  passed -= newlyFailed.size;
  failed += newlyFailed.size;
  return { errors, passed, failed, skipped };
}

// Layer 1: every field exists in the OpenAPI type.
function checkShape(v, type, where, err) {
  if (v === null) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(v)) return err(where, `expected a list (${type}), got ${JSON.stringify(v)}`);
    v.forEach((x, i) => checkShape(x, m[1], `${where}[${i}]`, err));
  } else if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (!isObj(v)) return err(where, `expected a map (${type}), got ${JSON.stringify(v)}`);
    for (const [k, x] of Object.entries(v)) checkShape(x, m[1], `${where}.${k}`, err);
  } else if (["string", "Date", "V1MicroTime", "number", "boolean", "IntOrString"].includes(type)) {
    if (typeof v === "object") err(where, `expected ${type}, got ${JSON.stringify(v)}`); // scalar types: layer 2
  } else if (type === "any" || type === "object") {
    // free-form
  } else if (M[type]?.getAttributeTypeMap) {
    if (!isObj(v)) return err(where, `expected an object (${type}), got ${JSON.stringify(v)}`);
    const attrs = new Map(M[type].getAttributeTypeMap().map((a) => [a.baseName, a]));
    for (const [k, x] of Object.entries(v)) {
      const a = attrs.get(k);
      if (!a) err(`${where}.${k}`, `unknown field "${k}" in ${type}`);
      else checkShape(x, a.type, `${where}.${k}`, err);
    }
  } else err(where, `validator has no rule for type ${type}`);
}

// Layer 2: kubernetes-models' JSON schema.
function checkSchema(o, id, err) {
  const [group, ver] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : [null, o.apiVersion];
  let mod;
  try {
    mod = require(`kubernetes-models/${group ? group + "/" : ""}${ver}/${o.kind}`);
  } catch (e) {
    if (e.code !== "MODULE_NOT_FOUND") throw e;
    return err(id, `kubernetes-models has no ${o.apiVersion} ${o.kind}`);
  }
  try {
    new mod[o.kind](o).validate();
  } catch (e) {
    // ajv joins its messages with ", " before each "data/..." path.
    for (const line of String(e.message).split(/, (?=data[/ ])/)) err(id, `schema: ${line}`);
  }
}

// Layer 3: per-object API-server rules.
function checkObject(o, id, err) {
  const md = isObj(o.metadata) ? o.metadata : {};
  const name = md.name;
  if (typeof name !== "string" || !name) err(`${id}.metadata.name`, "name: Required value");
  else if (o.kind === "Service" && !isDns1035Label(name))
    err(`${id}.metadata.name`, `"${name}" is not a valid Service name (DNS-1035 label: lower case letters, digits and '-', starting with a letter, at most 63)`);
  else if (o.kind === "Namespace" && !isDns1123Label(name))
    err(`${id}.metadata.name`, `"${name}" is not a valid DNS-1123 label`);
  else if (!isDns1123Subdomain(name))
    err(`${id}.metadata.name`, `"${name}" is not a valid DNS-1123 subdomain (lower case letters, digits, '-' and '.')`);
  if (md.namespace !== undefined && !isDns1123Label(md.namespace))
    err(`${id}.metadata.namespace`, `"${md.namespace}" is not a valid DNS-1123 label`);
  checkMeta(md, `${id}.metadata`, err);

  for (const t of podTemplates(o, id)) {
    checkMeta(t.meta, t.where.replace(/\.spec$/, ".metadata"), err);
    if (isObj(t.spec)) checkPodSpec(t.spec, t.where, err);
  }
  if (WORKLOADS.has(o.kind) && isObj(o.spec)) checkWorkload(o, id, err);
  if (o.kind === "Service" && isObj(o.spec)) checkService(o.spec, `${id}.spec`, err);
  if ((o.kind === "ConfigMap" || o.kind === "Secret"))
    for (const field of ["data", "binaryData", "stringData"])
      for (const k of Object.keys(isObj(o[field]) ? o[field] : {}))
        if (k.length > 253 || !CONFIGMAP_KEY.test(k)) err(`${id}.${field}.${k}`, `"${k}" is not a valid config key (letters, digits, '-', '_', '.')`);
}

function checkMeta(md, where, err) {
  for (const [k, v] of Object.entries(isObj(md.labels) ? md.labels : {})) {
    if (!isQualifiedName(k)) err(`${where}.labels`, `label key "${k}" is not a valid qualified name`);
    if (typeof v === "string" && (v.length > 63 || !LABEL_VALUE.test(v)))
      err(`${where}.labels.${k}`, `label value "${v}" is invalid (at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends)`);
  }
  for (const k of Object.keys(isObj(md.annotations) ? md.annotations : {}))
    if (!isQualifiedName(k.toLowerCase())) err(`${where}.annotations`, `annotation key "${k}" is not a valid qualified name`);
}

function checkWorkload(o, id, err) {
  const s = o.spec;
  if (Number.isInteger(s.replicas) && s.replicas < 0) err(`${id}.spec.replicas`, "replicas must be greater than or equal to 0");
  const sel = s.selector, labels = s.template?.metadata?.labels ?? {};
  if (isObj(sel)) {
    if (!Object.keys(sel.matchLabels ?? {}).length && !(sel.matchExpressions ?? []).length)
      err(`${id}.spec.selector`, "empty selector is invalid for a workload");
    else if (!matchesSelector(sel, labels))
      err(`${id}.spec.selector`, `selector ${JSON.stringify(sel)} does not match template labels ${JSON.stringify(labels)}`);
  }
  const ru = s.strategy?.rollingUpdate;
  if (o.kind === "Deployment" && isObj(ru) && [0, "0%"].includes(ru.maxSurge ?? 1) && [0, "0%"].includes(ru.maxUnavailable ?? 1))
    err(`${id}.spec.strategy.rollingUpdate`, "maxSurge and maxUnavailable may not both be 0");
  if (o.kind === "Deployment" && s.template?.spec?.restartPolicy && s.template.spec.restartPolicy !== "Always")
    err(`${id}.spec.template.spec.restartPolicy`, `a Deployment's pods must have restartPolicy Always`);
}

function checkPodSpec(spec, where, err) {
  const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].filter(isObj);
  if (!Array.isArray(spec.containers) || !spec.containers.length) err(`${where}.containers`, "containers: Required value (at least one)");
  const volNames = new Set();
  for (const [i, v] of (Array.isArray(spec.volumes) ? spec.volumes : []).entries()) {
    if (!isObj(v)) continue;
    if (!isDns1123Label(v.name)) err(`${where}.volumes[${i}].name`, `"${v.name}" is not a valid volume name (DNS-1123 label)`);
    if (volNames.has(v.name)) err(`${where}.volumes[${i}].name`, `Duplicate value: "${v.name}"`);
    volNames.add(v.name);
  }
  const cNames = new Set(), portNames = new Set();
  for (const c of all) {
    const cw = `${where} container ${c.name ?? "?"}`;
    if (typeof c.name === "string") {
      if (!isDns1123Label(c.name)) err(cw, `container name "${c.name}" is not a valid DNS-1123 label`);
      if (cNames.has(c.name)) err(cw, `Duplicate container name "${c.name}"`);
      cNames.add(c.name);
    }
    if (typeof c.image !== "string" || !c.image.trim()) err(cw, "image: Required value");
    const own = new Set();
    for (const p of Array.isArray(c.ports) ? c.ports : []) {
      if (!isObj(p)) continue;
      if (typeof p.containerPort === "number" && !isPort(p.containerPort))
        err(cw, `containerPort ${p.containerPort} must be between 1 and 65535`);
      if (typeof p.hostPort === "number" && p.hostPort !== 0 && !isPort(p.hostPort))
        err(cw, `hostPort ${p.hostPort} must be between 1 and 65535`);
      if (p.name !== undefined) {
        if (!isSvcName(p.name))
          err(cw, `bad port name "${p.name}" (IANA_SVC_NAME: at most 15 lower case letters, digits and '-', with a letter, no '--')`);
        if (portNames.has(p.name)) err(cw, `Duplicate port name "${p.name}"`);
        portNames.add(p.name);
        own.add(p.name);
      }
    }
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
      const pr = c[probe];
      if (!isObj(pr)) continue;
      const handlers = ["httpGet", "tcpSocket", "grpc", "exec"].filter((h) => pr[h] !== undefined);
      if (handlers.length !== 1) err(`${cw} ${probe}`, `must have exactly one handler, has ${handlers.length ? handlers.join(", ") : "none"}`);
      for (const h of ["httpGet", "tcpSocket"]) {
        const port = pr[h]?.port;
        if (port === undefined) continue;
        if (typeof port === "number" && !isPort(port)) err(`${cw} ${probe}`, `port ${port} must be between 1 and 65535`);
        if (typeof port === "string") {
          if (!isSvcName(port)) err(`${cw} ${probe}`, `bad port name "${port}"`);
          else if (!own.has(port)) err(`${cw} ${probe}`, `port "${port}" names no port of container ${c.name}`);
        }
      }
      if (probe === "livenessProbe" && pr.successThreshold !== undefined && pr.successThreshold !== 1)
        err(`${cw} ${probe}`, "successThreshold must be 1 for a liveness probe");
    }
    const mountPaths = new Set();
    for (const vm of Array.isArray(c.volumeMounts) ? c.volumeMounts : []) {
      if (!isObj(vm)) continue;
      if (!volNames.has(vm.name)) err(cw, `volumeMounts: Not found: "${vm.name}" (no volume of that name)`);
      if (typeof vm.mountPath === "string") {
        if (mountPaths.has(vm.mountPath)) err(cw, `volumeMounts: mountPath "${vm.mountPath}" must be unique`);
        mountPaths.add(vm.mountPath);
      }
    }
    const req = c.resources?.requests ?? {}, lim = c.resources?.limits ?? {};
    for (const [r, q] of Object.entries(req)) {
      if (lim[r] === undefined) continue;
      const a = quantity(q), b = quantity(lim[r]);
      if (!Number.isNaN(a) && !Number.isNaN(b) && a > b)
        err(`${cw} resources`, `requests.${r} ${q} must be less than or equal to limits.${r} ${lim[r]}`);
    }
    const sc = c.securityContext ?? {}, psc = spec.securityContext ?? {};
    if ((sc.runAsNonRoot ?? psc.runAsNonRoot) === true && (sc.runAsUser ?? psc.runAsUser) === 0)
      err(`${cw} securityContext`, "runAsNonRoot with runAsUser 0 can never start");
    if (sc.allowPrivilegeEscalation === false && sc.privileged === true)
      err(`${cw} securityContext`, "cannot set allowPrivilegeEscalation to false and privileged to true");
  }
}

function checkService(s, where, err) {
  const type = s.type ?? "ClusterIP";
  const headless = s.clusterIP === "None";
  if (headless && type !== "ClusterIP") err(where, `headless (clusterIP: None) requires type ClusterIP, not ${type}`);
  const ports = Array.isArray(s.ports) ? s.ports : [];
  if (!ports.length && !headless && type !== "ExternalName") err(`${where}.ports`, "ports: Required value");
  const names = new Set();
  for (const [i, p] of ports.entries()) {
    if (!isObj(p)) continue;
    const pw = `${where}.ports[${i}]`;
    if (p.name === undefined && ports.length > 1) err(pw, "name: Required value (a Service with several ports names each)");
    if (p.name !== undefined) {
      if (!isDns1123Label(p.name)) err(pw, `bad port name "${p.name}" (DNS-1123 label)`);
      if (names.has(p.name)) err(pw, `Duplicate port name "${p.name}"`);
      names.add(p.name);
    }
    if (typeof p.port === "number" && !isPort(p.port)) err(pw, `port ${p.port} must be between 1 and 65535`);
    if (typeof p.targetPort === "number" && !isPort(p.targetPort)) err(pw, `targetPort ${p.targetPort} must be between 1 and 65535`);
    if (typeof p.targetPort === "string" && !isSvcName(p.targetPort)) err(pw, `bad targetPort name "${p.targetPort}"`);
    if (typeof p.nodePort === "number" && p.nodePort !== 0) {
      if (type !== "NodePort" && type !== "LoadBalancer") err(pw, `nodePort may not be used when type is ${type}`);
      else if (p.nodePort < 30000 || p.nodePort > 32767)
        err(pw, `nodePort ${p.nodePort} outside the default range 30000-32767`);
    }
  }
}

// Layer 4: references between the objects of the bundle.
function checkBundle(objs, err) {
  const ids = new Map();
  for (const { o, id } of objs) {
    const key = `${o.apiVersion.split("/").length > 1 ? o.apiVersion.split("/")[0] : ""}/${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
    if (ids.has(key)) err(id, "", `duplicate object: same kind, namespace and name as ${ids.get(key)}`);
    ids.set(key, id);
  }
  const ns = (o) => o.metadata?.namespace ?? "";
  const pods = objs.flatMap(({ o, id }) => podTemplates(o, id).map((t) => ({ ...t, id, ns: ns(o) })));
  for (const { o, id } of objs) {
    if (o.kind !== "Service" || !isObj(o.spec?.selector) || !Object.keys(o.spec.selector).length) continue;
    const sel = o.spec.selector;
    const hits = pods.filter((p) => p.ns === ns(o) && matchesSelector({ matchLabels: sel }, p.meta.labels ?? {}));
    if (!hits.length) { err(id, ".spec.selector", `selector ${JSON.stringify(sel)} selects no pod template of the bundle`); continue; }
    for (const p of Array.isArray(o.spec.ports) ? o.spec.ports : []) {
      const tp = p?.targetPort ?? p?.port;
      for (const h of hits) {
        const cports = (h.spec?.containers ?? []).flatMap((c) => (Array.isArray(c?.ports) ? c.ports : []));
        if (typeof tp === "string" && !cports.some((cp) => cp?.name === tp))
          err(id, ".spec.ports", `targetPort "${tp}" names no container port of ${h.where}`);
      }
    }
  }
  // A ServiceMonitor must select a Service of the bundle (in its namespace,
  // or those of namespaceSelector.matchNames) that has each endpoint's port.
  for (const { o, id } of objs) {
    if (o.kind !== "ServiceMonitor" || !isObj(o.spec)) continue;
    const nss = o.spec.namespaceSelector?.matchNames ?? [ns(o)];
    const svcs = objs.filter(({ o: s }) => s.kind === "Service" && (o.spec.namespaceSelector?.any || nss.includes(ns(s))) &&
      isObj(o.spec.selector) && matchesSelector(o.spec.selector, s.metadata?.labels ?? {}));
    if (!svcs.length) { err(id, ".spec.selector", `selector ${JSON.stringify(o.spec.selector)} selects no Service of the bundle`); continue; }
    for (const [i, e] of (Array.isArray(o.spec.endpoints) ? o.spec.endpoints : []).entries())
      for (const { o: s, id: sid } of svcs)
        if (e?.port !== undefined && !(s.spec?.ports ?? []).some((sp) => sp?.name === e.port))
          err(id, `.spec.endpoints[${i}].port`, `port "${e.port}" names no port of ${sid}`);
  }
  const have = new Set(objs.map(({ o }) => `${o.kind}/${ns(o)}/${o.metadata?.name}`));
  for (const p of pods) {
    for (const v of Array.isArray(p.spec?.volumes) ? p.spec.volumes : []) {
      const refs = [["ConfigMap", v?.configMap?.name, v?.configMap?.optional], ["Secret", v?.secret?.secretName, v?.secret?.optional]];
      for (const [kind, name, optional] of refs)
        if (name !== undefined && !optional && !have.has(`${kind}/${p.ns}/${name}`))
          err(p.id, p.where.slice(p.id.length) + ".volumes", `volume ${v.name} needs ${kind} "${name}", which the bundle does not have`);
    }
  }
}

// ---- CLI -----------------------------------------------------------------------
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (!args.length) {
    console.error("usage: k8s-validate.mjs FILE|DIR|- ...");
    process.exit(2);
  }
  const r = validateDocs(readDocs(args));
  for (const e of r.errors) console.log(`ERROR ${e.where}: ${e.msg}`);
  console.log(`k8s-validate: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
  process.exit(r.errors.length ? 1 : 0);
}
