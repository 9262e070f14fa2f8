#!/usr/bin/env node
// bundle.mjs — small checks on rendered bundles, for run.sh.
//
//   bundle.mjs same A.yaml B.yaml
//       A and B hold the same objects in the same order (as YAML 1.1 reads
//       them); prints the first difference. Used for kubectl kustomize against
//       render.mjs.
//   bundle.mjs config RENDERED.yaml OUT_FILE
//       writes the weir.yaml of ConfigMap weir-config to OUT_FILE (for weir -t).
//   bundle.mjs overlay BASE.yaml OVERLAY.yaml v1=90,v2=10
//       the overlay has exactly the base's objects except weir-config's
//       weir.yaml and its weir-split annotation, and weir.yaml differs only in
//       its split (the `split:` line or block and the comment lines right
//       above it), which reads as given.
import fs from "node:fs";
import YAML from "yaml";
import { YAML_OPTS } from "./yamlio.mjs";

const die = (msg) => { console.log(`FAIL ${msg}`); process.exit(1); };
function load(file) {
  return YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), YAML_OPTS).map((d, i) => {
    if (d.errors.length) die(`${file}#${i}: YAML: ${d.errors[0].message}`);
    return d.toJS();
  }).filter((o) => o !== null && o !== undefined);
}
const idOf = (o) => `${o?.kind}/${o?.metadata?.name}`;

// First path where a and b differ, or null.
function diff(a, b, at) {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return at;
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = diff(a[i], b[i], `${at}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = diff(a[k], b[k], `${at}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return Object.is(a, b) ? null : at;
}

function weirConfig(objs, file) {
  const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata?.name === "weir-config");
  if (typeof cm?.data?.["weir.yaml"] !== "string") die(`${file}: no ConfigMap weir-config with data weir.yaml`);
  return cm.data["weir.yaml"];
}

// The config's lines without the split block (and the comments leading into it).
function withoutSplit(text, file) {
  // The replacement leaves the last line without its newline: not a difference.
  const lines = text.replace(/\n+$/, "").split("\n");
  const i = lines.findIndex((l) => /^split:/.test(l));
  if (i < 0) die(`${file}: weir.yaml has no top-level "split:" block`);
  let start = i, end = i + 1;
  while (start > 0 && /^#/.test(lines[start - 1])) start--;
  while (end < lines.length && /^\s+\S/.test(lines[end])) end++;
  return [...lines.slice(0, start), "<split>", ...lines.slice(end)].join("\n");
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "same" && args.length === 2) {
  const [a, b] = args.map(load);
  if (a.length !== b.length) die(`${args[0]} has ${a.length} objects, ${args[1]} has ${b.length}`);
  a.forEach((o, i) => {
    if (idOf(o) !== idOf(b[i])) die(`object ${i}: ${idOf(o)} in ${args[0]}, ${idOf(b[i])} in ${args[1]}`);
    const d = diff(o, b[i], idOf(o));
    if (d) die(`${d} differs between ${args[0]} and ${args[1]}`);
  });
  console.log(`ok ${a.length} objects identical`);
} else if (cmd === "config" && args.length === 2) {
  fs.writeFileSync(args[1], weirConfig(load(args[0]), args[0]));
} else if (cmd === "overlay" && args.length === 3) {
  const [base, over] = [load(args[0]), load(args[1])];
  const want = Object.fromEntries(args[2].split(",").map((kv) => kv.split("=")).map(([k, v]) => [k, Number(v)]));
  if (base.length !== over.length) die(`the overlay has ${over.length} objects, the base ${base.length}`);
  base.forEach((o, i) => {
    const p = over[i];
    if (idOf(o) !== idOf(p)) die(`object ${i}: ${idOf(o)} in the base, ${idOf(p)} in the overlay`);
    const d = diff(o, p, idOf(o));
    if (d && d !== `${idOf(o)}.data.weir.yaml` && d !== `${idOf(o)}.metadata.annotations.weir-split`)
      die(`${d} differs from the base (only weir-config's weir.yaml and its weir-split annotation may)`);
  });
  const [bt, ot] = [weirConfig(base, args[0]), weirConfig(over, args[1])];
  if (withoutSplit(bt, args[0]) !== withoutSplit(ot, args[1]))
    die(`the overlay's weir.yaml differs from the base's outside the split block: keep them in step`);
  const split = YAML.parse(ot).split;
  if (diff(split, want, "split")) die(`the overlay's split is ${JSON.stringify(split)}, expected ${JSON.stringify(want)}`);
  console.log(`ok only the split differs: ${JSON.stringify(split)}`);
} else {
  console.error("usage: bundle.mjs same A B | config RENDERED OUT | overlay BASE OVERLAY v1=P,v2=P");
  process.exit(2);
}
