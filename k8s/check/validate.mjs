// Validates rendered manifests against the Kubernetes API schemas, two ways:
//  - kubernetes-models (and its prometheus-operator models): each object's schema as the API
//    server's OpenAPI spec gives it: types, required fields, enums, formats;
//  - the API's field lists (the attribute maps of @kubernetes/client-node's generated models):
//    every field must be one the API knows, as `kubectl apply` (strict field validation)
//    demands; a misspelt or misplaced field fails here instead of being dropped silently.
// Usage: node validate.mjs FILE.yaml...   Exit 1 when any object is invalid.
// k8s/check.sh copies this file beside the node_modules it installed, so that the packages
// resolve from here.
import { readFileSync } from "node:fs";
import path from "node:path";

import yaml from "js-yaml";

const files = process.argv.slice(2);

// apiVersion → the module path prefix of its models.
function modelModule(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") {
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  }
  return group === "" ? `kubernetes-models/${version}/${kind}`
                      : `kubernetes-models/${group}/${version}/${kind}`;
}

// The client-node model class for a kind: V1Deployment, V2HorizontalPodAutoscaler, ...
function typeName(apiVersion, kind) {
  const version = apiVersion.split("/").pop();
  return version.charAt(0).toUpperCase() + version.slice(1) + kind;
}

const typeMaps = new Map();
async function attributeMap(type) {
  if (!typeMaps.has(type)) {
    let map = null;
    try {
      const mod = await import(`@kubernetes/client-node/dist/gen/models/${type}.js`);
      map = mod[type]?.getAttributeTypeMap?.() ?? null;
    } catch {
      map = null;  // not a model class (IntOrString, Quantity, ...): a leaf
    }
    typeMaps.set(type, map);
  }
  return typeMaps.get(type);
}

const kLeaves = new Set(["string", "number", "boolean", "Date", "any", "object", "RequestFile"]);

async function unknownFields(value, type, where, errors) {
  if (value === null || value === undefined || kLeaves.has(type)) return;
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) await unknownFields(item, m[1], `${where}[${i}]`, errors);
    }
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    for (const [key, item] of Object.entries(value)) await unknownFields(item, m[1], `${where}.${key}`, errors);
    return;
  }
  const map = await attributeMap(type);
  if (!map || typeof value !== "object" || Array.isArray(value)) return;
  const fields = new Map(map.map((a) => [a.baseName, a.type]));
  for (const [key, item] of Object.entries(value)) {
    if (!fields.has(key)) {
      errors.push(`${where}.${key}: unknown field (not in ${type})`);
    } else {
      await unknownFields(item, fields.get(key), `${where}.${key}`, errors);
    }
  }
}

let failed = 0;
let checked = 0;
for (const file of files) {
  const docs = yaml.loadAll(readFileSync(file, "utf8")).filter((d) => d);
  for (const obj of docs) {
    const id = `${path.basename(file)}: ${obj.kind}/${obj.metadata?.name}`;
    const errors = [];
    if (!obj.apiVersion || !obj.kind) {
      errors.push("no apiVersion or kind");
    } else {
      let Model = null;
      try {
        const mod = await import(modelModule(obj.apiVersion, obj.kind));
        Model = mod[obj.kind];
      } catch (e) {
        errors.push(`no schema for ${obj.apiVersion} ${obj.kind} (${e.code ?? e.message})`);
      }
      if (Model) {
        try {
          new Model(structuredClone(obj)).validate();
        } catch (e) {
          errors.push(e.message);
        }
      }
      // Custom resources have no field list here; their schema above is all there is.
      if (!obj.apiVersion.includes("monitoring.coreos.com")) {
        const type = typeName(obj.apiVersion, obj.kind);
        if (!(await attributeMap(type))) {
          errors.push(`no field list for ${type}`);
        } else {
          await unknownFields(obj, type, obj.kind, errors);
        }
      }
    }
    checked++;
    if (errors.length) {
      failed++;
      console.log(`FAIL ${id}`);
      for (const e of errors) console.log(`     ${e}`);
    }
  }
}
console.log(`schemas: ${checked - failed} of ${checked} objects valid`);
process.exit(failed || checked === 0 ? 1 : 0);
