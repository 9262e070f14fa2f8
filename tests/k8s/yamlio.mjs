// yamlio.mjs — reading manifests the way kubectl does, shared by tests/k8s.
//
// `kubectl apply -f` reads YAML 1.1 (yes/on are booleans, 0755 is octal) and
// refuses duplicate keys; so does everything here, so a scalar means the same
// thing in every check. (Kept apart from k8s-validate.mjs so that the small
// tools do not load the Kubernetes models.)
import YAML from "yaml";

export const YAML_OPTS = { version: "1.1", uniqueKeys: true };

// Every document of text as {where, obj} or {where, yamlErrors}.
export function parseText(text, name) {
  return YAML.parseAllDocuments(text, YAML_OPTS).map((d, i) => {
    const where = `${name}#${i}`;
    return d.errors.length ? { where, yamlErrors: d.errors.map((e) => e.message) } : { where, obj: d.toJS() };
  });
}
