//! Image references as people and Kubernetes write them (`nginx`, `ghcr.io/acme/app:1.2`,
//! `registry:5000/team/app@sha256:...`), normalised the way the Docker/OCI tooling does: a first path component
//! with a `.` or a `:` (or `localhost`) is a registry host, anything else is on Docker Hub (`docker.io`), where a
//! single-component name lives under `library/`; no tag and no digest means `:latest`.

use serde::{Deserialize, Serialize};

/// Docker Hub's canonical host, and the aliases it is known by.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ALIASES: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRef {
    /// Registry host (lower case, with its port if any); `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path within the registry (`library/nginx`, `team/app`).
    pub repository: String,
    /// The tag; `None` when the reference pins a digest only.
    pub tag: Option<String>,
    /// `algorithm:hex`, lower case.
    pub digest: Option<String>,
}

impl ImageRef {
    /// The repository names under which a registry inventory may list this reference's repository: the path,
    /// and for Docker Hub's official images also the path without `library/` (a mirror often drops it). Matching
    /// more names can only hold more images back, never fewer.
    pub fn repository_candidates(&self) -> Vec<&str> {
        let mut names = vec![self.repository.as_str()];
        if self.registry == DOCKER_HUB
            && let Some(short) = self.repository.strip_prefix("library/")
        {
            names.push(short);
        }
        names
    }

    /// `registry/repository[:tag][@digest]`.
    pub fn canonical(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }
}

/// Checks and lower-cases a digest `algorithm:hex` (e.g. `sha256:` and 64 hex digits).
pub fn normalize_digest(text: &str) -> Result<String, String> {
    let t = text.trim();
    let (algorithm, hex) = t
        .split_once(':')
        .ok_or_else(|| format!("digest {t:?} is not of the form algorithm:hex"))?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'_' | b'-'));
    if !algorithm_ok {
        return Err(format!("digest {t:?}: bad algorithm {algorithm:?}"));
    }
    if hex.len() < 32 || hex.len() > 128 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "digest {t:?}: the encoded part must be 32 to 128 hexadecimal digits"
        ));
    }
    if algorithm == "sha256" && hex.len() != 64 {
        return Err(format!("digest {t:?}: sha256 needs 64 hexadecimal digits"));
    }
    Ok(format!("{algorithm}:{}", hex.to_ascii_lowercase()))
}

fn valid_path_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses an image reference. The error says what is wrong with it.
pub fn parse_reference(text: &str) -> Result<ImageRef, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty image reference".to_owned());
    }
    if t.len() > 4096 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("image reference {:?} has spaces or is too long", truncate(t)));
    }
    let (name, digest) = match t.split_once('@') {
        Some((name, digest)) => (name, Some(normalize_digest(digest)?)),
        None => (t, None),
    };
    // A tag is a `:` after the last `/` (a `:` before it is a registry port).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &name[last_slash + i + 1..];
            if !valid_tag(tag) {
                return Err(format!("image reference {:?}: bad tag {tag:?}", truncate(t)));
            }
            (&name[..last_slash + i], Some(tag.to_owned()))
        }
        None => (name, None),
    };
    let (registry, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_ascii_lowercase(), rest)
        }
        _ => (DOCKER_HUB.to_owned(), name),
    };
    if let Some((host, port)) = registry.split_once(':')
        && (host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("image reference {:?}: bad registry {registry:?}", truncate(t)));
    }
    let registry = if DOCKER_HUB_ALIASES.contains(&registry.as_str()) {
        DOCKER_HUB.to_owned()
    } else {
        registry
    };
    if path.is_empty() || !path.split('/').all(valid_path_component) {
        return Err(format!(
            "image reference {:?}: bad repository path {path:?}",
            truncate(t)
        ));
    }
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    let tag = match (&tag, &digest) {
        (None, None) => Some("latest".to_owned()),
        _ => tag,
    };
    Ok(ImageRef {
        registry,
        repository,
        tag,
        digest,
    })
}

fn truncate(t: &str) -> String {
    t.chars().take(120).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_names_are_normalised() {
        let r = parse_reference("nginx").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/nginx");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.repository_candidates(), vec!["library/nginx", "nginx"]);
        let r = parse_reference("index.docker.io/bitnami/redis:7.2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "bitnami/redis")
        );
        assert_eq!(r.tag.as_deref(), Some("7.2"));
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let r = parse_reference(&format!("Registry.Example.com:5000/team/app:1.4@{D}")).unwrap();
        assert_eq!(r.registry, "registry.example.com:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.4"));
        assert_eq!(r.digest.as_deref(), Some(D));
        let r = parse_reference(&format!(
            "localhost/app@{}",
            D.to_ascii_uppercase().replace("SHA256", "sha256")
        ))
        .unwrap();
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.tag, None, "a digest alone is not :latest");
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(
            parse_reference("localhost:5000/app").unwrap().tag.as_deref(),
            Some("latest")
        );
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "",
            "app:",
            "app@sha256:xyz",
            "a b",
            "team//app",
            "app:bad/tag",
            "app@md5",
            "/app",
            "app:bad/tag:1",
        ] {
            assert!(parse_reference(bad).is_err(), "{bad:?}");
        }
    }
}
