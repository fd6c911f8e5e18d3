//! Bearer-token guard for admin calls. A service opts in by calling [`AdminAuth::authorize`] first thing in each
//! handler that changes server state (`Models.ReloadModel`, `Feedback.RecordActions`, `RecordRestores` and
//! `ResetBreaker`); scoring and read-only calls never call it and stay open.

use subtle::ConstantTimeEq;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// The configured admin token, if any. `Debug` never shows it.
#[derive(Clone, Default)]
pub struct AdminAuth {
    token: Option<Vec<u8>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl AdminAuth {
    /// `None`: admin calls are open (the README says to set a token whenever the port is reachable by others).
    pub fn new(token: Option<&str>) -> Self {
        Self {
            token: token.map(|t| t.as_bytes().to_vec()),
        }
    }

    /// Whether a token is configured.
    pub fn is_enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Checks `authorization: Bearer <token>`: absent or not a bearer credential -> `UNAUTHENTICATED`, a wrong
    /// token -> `PERMISSION_DENIED`. The comparison takes the same time wherever the first difference is.
    pub fn authorize(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let Some(value) = metadata.get("authorization") else {
            return Err(Status::unauthenticated(
                "this call needs `authorization: Bearer <token>` metadata",
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(|| Status::unauthenticated("the authorization metadata is not `Bearer <token>`"))?;
        // `ct_eq` on slices of different lengths is false without comparing contents; only the length can leak,
        // and the configured token is required to be long enough for that not to matter.
        if bool::from(presented.as_bytes().ct_eq(expected)) {
            Ok(())
        } else {
            Err(Status::permission_denied("the bearer token is not valid for this call"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn md(value: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(v) = value {
            m.insert("authorization", v.parse().expect("ascii"));
        }
        m
    }

    #[test]
    fn statuses_follow_the_credential() {
        let open = AdminAuth::new(None);
        assert!(open.authorize(&md(None)).is_ok());
        let auth = AdminAuth::new(Some("0123456789abcdef"));
        let code = |v| auth.authorize(&md(v)).map_err(|s| s.code());
        assert_eq!(code(None), Err(Code::Unauthenticated));
        assert_eq!(code(Some("Basic dXNlcjpwYXNz")), Err(Code::Unauthenticated));
        assert_eq!(code(Some("Bearer")), Err(Code::Unauthenticated));
        assert_eq!(code(Some("Bearer 0123456789abcdeX")), Err(Code::PermissionDenied));
        assert_eq!(code(Some("Bearer 0123456789abcde")), Err(Code::PermissionDenied));
        assert_eq!(code(Some("Bearer 0123456789abcdef")), Ok(()));
        assert_eq!(code(Some("bearer 0123456789abcdef")), Ok(()));
        assert!(!format!("{auth:?}").contains("0123456789abcdef"));
    }
}
