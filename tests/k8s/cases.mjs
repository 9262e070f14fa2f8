#!/usr/bin/env node
// cases.mjs — planted mistakes: each must be caught, with the expected error.
//
//   node tests/k8s/cases.mjs K8S_DIR CASE.yaml...
//
// Each case file under tests/k8s/bad/ plants one mistake into the real
// rendered k8s/ bundle and names the error it must produce:
//
//   expect: 'regular expression the error must match'
//   check: k8s | weir | weir-t   (k8s-validate.mjs | weir-consistency.mjs |
//                                 `weir -t` on the ConfigMap's weir.yaml)
//   patch:                       JSON 6902 operations on one object
//     target: {kind: Deployment, name: weir}
//     ops: [{op: replace, path: /spec/replicas, value: "2"}]
//   edit:                        or a text substitution in a ConfigMap value
//     target: {kind: ConfigMap, name: weir-config}
//     key: weir.yaml
//     from: 'exact text'
//     to: 'replacement'
//   append: |                    or extra YAML text added to the bundle
//     ...
//
// The bundle is written out as YAML and read back, as kubectl would read it.
// A case passes when the checker fails AND one of its errors matches
// `expect`; a checker that passes, or fails for another reason, fails the case.
// `weir-t` cases need WEIR_BIN (the weir binary) and are skipped without it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import YAML from "yaml";
import { render, toYaml, applyJson6902 } from "./render.mjs";
import { validateDocs, parseText } from "./k8s-validate.mjs";
import { checkWeir } from "./weir-consistency.mjs";

const [k8sDir, ...caseFiles] = process.argv.slice(2);
if (!k8sDir || !caseFiles.length) {
  console.error("usage: cases.mjs K8S_DIR CASE.yaml...");
  process.exit(2);
}
const baseObjs = render(k8sDir);
const weirBin = process.env.WEIR_BIN;
let passed = 0, failed = 0, skipped = 0;
const find = (objs, t) => {
  const hits = objs.filter((o) => o.kind === t.kind && o.metadata?.name === t.name);
  if (hits.length !== 1) throw new Error(`target ${t.kind}/${t.name} matches ${hits.length} objects`);
  return objs.indexOf(hits[0]);
};

for (const file of caseFiles) {
  const name = path.basename(file, ".yaml");
  let c;
  try {
    c = YAML.parse(fs.readFileSync(file, "utf8"));
    if (typeof c?.expect !== "string") throw new Error("no expect:");
  } catch (e) {
    console.log(`FAIL ${name}: bad case file: ${e.message}`);
    failed++;
    continue;
  }
  const check = c.check ?? "k8s";
  if (check === "weir-t" && !weirBin) {
    console.log(`SKIP ${name}: needs WEIR_BIN (weir -t)`);
    skipped++;
    continue;
  }
  let errors;
  try {
    const objs = structuredClone(baseObjs);
    if (c.patch) {
      const i = find(objs, c.patch.target);
      objs[i] = applyJson6902(objs[i], c.patch.ops, name);
    }
    if (c.edit) {
      const o = objs[find(objs, c.edit.target)];
      const text = o.data?.[c.edit.key];
      if (typeof text !== "string" || !text.includes(c.edit.from)) throw new Error(`edit: "${c.edit.from}" not found`);
      o.data[c.edit.key] = text.replace(c.edit.from, c.edit.to);
    }
    let yamlText = toYaml(objs);
    if (c.append) yamlText += `---\n${c.append}`;
    const docs = parseText(yamlText, name);
    if (check === "k8s") errors = validateDocs(docs).errors.map((e) => `${e.where}: ${e.msg}`);
    else if (check === "weir") {
      errors = docs.filter((d) => d.yamlErrors).map((d) => `${d.where}: YAML`);
      errors.push(...checkWeir(docs.filter((d) => !d.yamlErrors).map((d) => d.obj)).errors.map((e) => `${e.where}: ${e.msg}`));
    } else if (check === "weir-t") {
      const cm = docs.map((d) => d.obj).find((o) => o?.kind === "ConfigMap" && o.metadata?.name === "weir-config");
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "weir-k8s-"));
      const cfg = path.join(dir, "weir.yaml");
      fs.writeFileSync(cfg, cm.data["weir.yaml"]);
      const r = spawnSync(weirBin, ["-t", "-c", cfg], { encoding: "utf8", timeout: 30000 });
      fs.rmSync(dir, { recursive: true, force: true });
      errors = r.status === 0 ? [] : (r.stderr || `exit ${r.status}`).trim().split("\n");
      if (r.status !== 0 && r.status !== 1) errors = [`weir -t exited ${r.status} ${r.signal ?? ""} (expected 1): ${errors.join(" | ")}`];
    } else throw new Error(`unknown check ${check}`);
  } catch (e) {
    console.log(`FAIL ${name}: could not plant the mistake: ${e.message}`);
    failed++;
    continue;
  }
  const re = new RegExp(c.expect);
  const hit = errors.find((e) => re.test(e));
  if (hit) {
    console.log(`ok   ${name}: ${hit.split("\n")[0]}`);
    passed++;
  } else {
    console.log(`FAIL ${name}: expected an error matching /${c.expect}/ from ${check}, got ${errors.length ? "" : "none"}`);
    for (const e of errors) console.log(`       ${e}`);
    failed++;
  }
}
console.log(`planted mistakes: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
