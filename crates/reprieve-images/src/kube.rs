//! Kubernetes objects as live references: every image a workload names keeps that image.
//!
//! Input: YAML (several documents separated by `---`) or JSON files, including `kubectl get ... -o json/yaml`
//! output (`kind: List` or `*List` with `items`, nested lists too). From every object the reader takes the images
//! of all `containers`, `initContainers` and `ephemeralContainers` anywhere under `spec` (Deployments,
//! StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods, and custom resources that embed pod templates),
//! plus, for Pods, the digests they actually run (`status.*containerStatuses[].imageID`). CronJobs also give
//! their `schedule`, `timeZone` and `suspend`.
//!
//! Counting follows the log readers' [`ReadReport`] discipline: `events` are image uses read, `ignored` are
//! objects that name no image (ConfigMaps, Services, blank documents), `malformed` are documents that do not
//! parse, objects that are not mappings, containers without an `image` and references that do not parse. A bad
//! container never hides the good ones of the same object. `line` is the line where the document starts.

use std::path::Path;

use reprieve_batch::formats::{ReadReport, SourceFormat};
use reprieve_batch::{LineError, ReadError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::io_error;
use crate::reference::{ImageRef, parse_reference};

/// The object that names an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KubeObject {
    pub kind: String,
    /// Empty when the object has none (cluster-scoped, or a manifest that leaves it to `kubectl -n`).
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for KubeObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// A CronJob's schedule as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronSpec {
    pub schedule: String,
    pub time_zone: Option<String>,
    pub suspended: bool,
}

/// One image named by one container of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUse {
    pub object: KubeObject,
    /// Container name (`init:` prefixed for init containers, `status:` for a Pod's running digest).
    pub container: String,
    /// The reference as written.
    pub image: String,
    pub reference: ImageRef,
    /// The CronJob's schedule when the object is one.
    pub cron: Option<CronSpec>,
    /// The file it came from.
    pub source: String,
}

const CONTAINER_KEYS: [(&str, &str); 3] = [
    ("containers", ""),
    ("initContainers", "init:"),
    ("ephemeralContainers", "ephemeral:"),
];
const STATUS_KEYS: [&str; 3] = [
    "containerStatuses",
    "initContainerStatuses",
    "ephemeralContainerStatuses",
];
/// How deep the search for containers goes under `spec` (pod templates are at most a few levels down).
const MAX_DEPTH: usize = 12;

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Reads one file of Kubernetes objects, streaming every image use to `f`.
pub fn read_kubernetes(path: &Path, strict: bool, mut f: impl FnMut(ImageUse)) -> Result<ReadReport, ReadError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut report = ReadReport::new(path, SourceFormat::Kubernetes);
    let source = path.display().to_string();
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => walk(&v, 1, &source, strict, &mut report, &mut f, 0)?,
            Err(e) => crate::error::bad(&mut report, e.line() as u64, format!("JSON: {e}"), strict)?,
        }
        return Ok(report);
    }
    for (line, doc) in yaml_documents(&text) {
        if doc.trim().is_empty()
            || doc
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            report.record::<()>(line, Ok(None), strict)?;
            continue;
        }
        match serde_yaml_ng::from_str::<Value>(doc) {
            Ok(Value::Null) => {
                report.record::<()>(line, Ok(None), strict)?;
            }
            Ok(v) => walk(&v, line, &source, strict, &mut report, &mut f, 0)?,
            Err(e) => crate::error::bad(&mut report, line, format!("YAML: {e}"), strict)?,
        }
    }
    Ok(report)
}

/// Splits a YAML stream at `---` lines (and drops `...` end markers): (first line number, document text).
fn yaml_documents(text: &str) -> Vec<(u64, &str)> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u64;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        let is_separator = bare == "---" || bare.starts_with("--- ") || bare == "...";
        if is_separator {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i as u64 + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs.retain(|(_, d)| !d.trim().is_empty());
    docs
}

#[allow(clippy::too_many_arguments)]
fn walk(
    v: &Value,
    line: u64,
    source: &str,
    strict: bool,
    report: &mut ReadReport,
    f: &mut impl FnMut(ImageUse),
    depth: usize,
) -> Result<(), ReadError> {
    if let Value::Array(items) = v {
        for item in items {
            walk(item, line, source, strict, report, f, depth + 1)?;
        }
        return Ok(());
    }
    let Value::Object(map) = v else {
        return crate::error::bad(report, line, "a Kubernetes object must be a mapping".to_owned(), strict);
    };
    // `kind: List`, `PodList`, `DeploymentList`, ...: the items are the objects.
    if let Some(Value::Array(items)) = map.get("items")
        && map
            .get("kind")
            .and_then(Value::as_str)
            .is_none_or(|k| k.ends_with("List"))
    {
        if depth > MAX_DEPTH {
            return crate::error::bad(report, line, "lists nested too deeply".to_owned(), strict);
        }
        for item in items {
            walk(item, line, source, strict, report, f, depth + 1)?;
        }
        return Ok(());
    }
    let object = KubeObject {
        kind: str_at(v, &["kind"]).unwrap_or("").to_owned(),
        namespace: str_at(v, &["metadata", "namespace"]).unwrap_or("").to_owned(),
        name: str_at(v, &["metadata", "name"])
            .or_else(|| str_at(v, &["metadata", "generateName"]))
            .unwrap_or("")
            .to_owned(),
    };
    let cron = (object.kind == "CronJob").then(|| CronSpec {
        schedule: str_at(v, &["spec", "schedule"]).unwrap_or("").to_owned(),
        time_zone: str_at(v, &["spec", "timeZone"]).map(str::to_owned),
        suspended: v.pointer("/spec/suspend").and_then(Value::as_bool).unwrap_or(false),
    });
    let mut found = Vec::new();
    if let Some(spec) = v.get("spec") {
        containers(spec, &mut found, 0);
    }
    if object.kind == "Pod"
        && let Some(status) = v.get("status")
    {
        for key in STATUS_KEYS {
            for c in status.get(key).and_then(Value::as_array).into_iter().flatten() {
                // `docker-pullable://repo@sha256:...`; a bare `sha256:...` is the config id, not a manifest.
                if let Some(id) = c.get("imageID").and_then(Value::as_str) {
                    let id = id.split_once("://").map_or(id, |(_, rest)| rest);
                    if id.contains('@') {
                        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                        found.push((format!("status:{name}"), Some(id.to_owned())));
                    }
                }
            }
        }
    }
    if found.is_empty() {
        return report.record::<()>(line, Ok(None), strict).map(|_| ());
    }
    for (container, image) in found {
        let result = match image {
            None => Err(LineError::new(format!(
                "{object}: container {container:?} has no image"
            ))),
            Some(image) => match parse_reference(&image) {
                Ok(reference) => Ok(Some(ImageUse {
                    object: object.clone(),
                    container,
                    image,
                    reference,
                    cron: cron.clone(),
                    source: source.to_owned(),
                })),
                Err(e) => Err(LineError::new(format!("{object}: container {container:?}: {e}"))),
            },
        };
        if let Some(u) = report.record(line, result, strict)? {
            f(u);
        }
    }
    Ok(())
}

/// Collects (container name, image) of every container list under `v`.
fn containers(v: &Value, out: &mut Vec<(String, Option<String>)>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(map) => {
            for (key, prefix) in CONTAINER_KEYS {
                if let Some(Value::Array(list)) = map.get(key) {
                    for c in list {
                        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                        let image = c.get("image").and_then(Value::as_str).map(str::to_owned);
                        out.push((format!("{prefix}{name}"), image));
                    }
                }
            }
            for (key, child) in map {
                if !CONTAINER_KEYS.iter().any(|(k, _)| k == key) {
                    containers(child, out, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                containers(item, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(text: &str, ext: &str) -> (Vec<ImageUse>, ReadReport) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("k.{ext}"));
        std::fs::write(&path, text).unwrap();
        let mut uses = Vec::new();
        let report = read_kubernetes(&path, false, |u| uses.push(u)).unwrap();
        (uses, report)
    }

    #[test]
    fn multi_document_yaml_with_a_cronjob_and_a_bad_document() {
        let (uses, report) = read(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: batch/v1\nkind: CronJob\n\
             metadata: {name: report, namespace: finance}\nspec:\n  schedule: \"0 3 1 * *\"\n  jobTemplate:\n    \
             spec:\n      template:\n        spec:\n          initContainers:\n          - name: fetch\n            \
             image: busybox:1.36\n          containers:\n          - name: run\n            \
             image: registry.example.com/finance/report:2024.1\n---\n: : bad: [\n---\nkind: Pod\n\
             metadata: {name: p}\nspec:\n  containers:\n  - name: nameless\n",
            "yaml",
        );
        let images: Vec<String> = uses.iter().map(|u| u.reference.canonical()).collect();
        assert_eq!(
            images,
            vec![
                "registry.example.com/finance/report:2024.1",
                "docker.io/library/busybox:1.36"
            ]
        );
        assert_eq!(uses[0].object.to_string(), "CronJob finance/report");
        assert_eq!(uses[1].container, "init:fetch");
        assert_eq!(uses[0].cron.as_ref().unwrap().schedule, "0 3 1 * *");
        assert_eq!(
            (report.events, report.ignored, report.malformed),
            (2, 1, 2),
            "{report:?}"
        );
        assert_eq!(report.lines, report.events + report.ignored + report.malformed);
        assert_eq!(report.first_malformed[0].0, 21, "the bad document's first line");
    }

    #[test]
    fn kubectl_json_list_with_pod_status_digests() {
        let d = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let text = format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[{{"kind":"Pod","metadata":{{"name":"web-1","namespace":"shop"}},
            "spec":{{"containers":[{{"name":"web","image":"shop/web:latest"}}]}},
            "status":{{"containerStatuses":[{{"name":"web","imageID":"docker-pullable://shop/web@{d}"}},{{"name":"x","imageID":"sha256:{h}"}}]}}}}]}}"#,
            h = &d[7..]
        );
        let (uses, report) = read(&text, "json");
        assert_eq!(report.malformed, 0, "{report:?}");
        assert_eq!(uses.len(), 2);
        assert_eq!(uses[1].container, "status:web");
        assert_eq!(uses[1].reference.digest.as_deref(), Some(d));
        assert_eq!(uses[1].reference.repository, "shop/web");
    }
}
