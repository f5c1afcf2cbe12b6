//! The store URI (`etcd://h1:p1,h2:p2/PREFIX`) and the store config file: parsed without the
//! etcd client, so a plugin built without the `etcd` feature still refuses a bad `store=` with
//! the same one-line error.

use std::path::{Path, PathBuf};

use virtplug_plugin_sdk::{Error, Result, codes};

/// A parsed `etcd://` store URI: the cluster's client endpoints and the key prefix this fleet's
/// metadata lives under. Credentials and TLS never come from here (see [`StoreConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUri {
    /// `host:port` of each member, in the URI's order.
    pub endpoints: Vec<String>,
    /// The key prefix, `/PREFIX` (no trailing slash).
    pub prefix: String,
}

fn bad(uri: &str, why: &str) -> Error {
    Error::new(codes::INVALID_ARG, format!("store URI '{uri}': {why}"))
}

impl StoreUri {
    /// Parses `etcd://host:port[,host:port...]/PREFIX`; anything else is INVALID_ARG naming the
    /// URI and what is wrong with it.
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri.strip_prefix("etcd://").ok_or_else(|| bad(uri, "the scheme must be etcd://"))?;
        if rest.contains(['?', '#']) {
            return Err(bad(uri, "no query or fragment is allowed"));
        }
        let (authority, path) = rest.split_once('/').ok_or_else(|| bad(uri, "a /PREFIX path is required"))?;
        if authority.contains('@') {
            return Err(bad(uri, "credentials belong in the store config file, never in the URI"));
        }
        let prefix = path.trim_end_matches('/');
        if prefix.is_empty() {
            return Err(bad(uri, "a /PREFIX path is required"));
        }
        if prefix.split('/').any(str::is_empty) || prefix.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad(uri, "the prefix must be non-empty path segments"));
        }
        let mut endpoints = Vec::new();
        for ep in authority.split(',') {
            let (host, port) = ep.rsplit_once(':').ok_or_else(|| bad(uri, "every member must be host:port"))?;
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad(uri, "every member must be host:port"));
            }
            endpoints.push(ep.to_owned());
        }
        Ok(Self { endpoints, prefix: format!("/{prefix}") })
    }
}

/// The store config file (`VIRTPLUG_STORE_CONFIG`): `key = value` lines, `#` comments.
/// `host` (this host's name in the fleet; default: the machine's host name), `user` and
/// `password` (etcd authentication), `lease-ttl` (seconds a host keeps its domains without
/// renewing its lease, 1..=3600; default 10), `ca` (PEM CA bundle: the members are reached over
/// TLS and verified against it), `cert` and `key` (PEM client certificate and key, together,
/// with `ca`). Relative paths are relative to the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// This host's name in the fleet (the owner key's value).
    pub host: String,
    /// etcd user and password, if the cluster has authentication on.
    pub user: Option<(String, String)>,
    /// The lease TTL in seconds.
    pub lease_ttl: i64,
    /// TLS to the members, if the config asks for it.
    pub tls: Option<TlsFiles>,
}

/// The TLS files of a store config (read when a connection is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM CA bundle the members' certificates must chain to.
    pub ca: PathBuf,
    /// PEM client certificate and key, for clusters with client certificate authentication.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The lease TTL when the config file names none.
pub const DEFAULT_LEASE_TTL: i64 = 10;

fn machine_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { host: machine_host_name(), user: None, lease_ttl: DEFAULT_LEASE_TTL, tls: None }
    }
}

impl StoreConfig {
    /// Parses the text of a config file (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let bad = |n: usize, why: &str| {
            Error::new(codes::INVALID_ARG, format!("store config '{}' line {n}: {why}", path.display()))
        };
        let mut cfg = Self::default();
        let (mut user, mut password) = (None, None);
        let (mut ca, mut cert, mut key) = (None, None, None);
        let folder = path.parent().unwrap_or(Path::new("/"));
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| bad(i + 1, "expected key = value"))?;
            let v = v.trim().to_owned();
            match k.trim() {
                "host" if !v.is_empty() => cfg.host = v,
                "user" => user = Some(v),
                "password" => password = Some(v),
                "lease-ttl" => {
                    cfg.lease_ttl = v
                        .parse()
                        .ok()
                        .filter(|t| (1..=3600).contains(t))
                        .ok_or_else(|| bad(i + 1, "lease-ttl must be 1..=3600 seconds"))?;
                }
                "ca" if !v.is_empty() => ca = Some(folder.join(v)),
                "cert" if !v.is_empty() => cert = Some(folder.join(v)),
                "key" if !v.is_empty() => key = Some(folder.join(v)),
                _ => return Err(bad(i + 1, "unknown key")),
            }
        }
        let whole = |why: &str| Error::new(codes::INVALID_ARG, format!("store config '{}': {why}", path.display()));
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(whole("cert and key go together")),
        };
        cfg.tls = match (ca, identity) {
            (Some(ca), identity) => Some(TlsFiles { ca, identity }),
            (None, None) => None,
            (None, Some(_)) => return Err(whole("a client certificate needs the cluster's ca")),
        };
        cfg.user = match (user, password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => {
                return Err(Error::new(
                    codes::INVALID_ARG,
                    format!("store config '{}': user and password go together", path.display()),
                ));
            }
        };
        Ok(cfg)
    }

    /// The config named by `VIRTPLUG_STORE_CONFIG`, or the defaults when it is unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var_os("VIRTPLUG_STORE_CONFIG").filter(|v| !v.is_empty()) {
            None => Ok(Self::default()),
            Some(p) => {
                let path = Path::new(&p);
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::new(codes::INVALID_ARG, format!("store config '{}' cannot be read: {e}", path.display()))
                })?;
                Self::parse(path, &text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, expected: std::result::Result<(&[&str], &str), &str>) {
        let got = StoreUri::parse(uri);
        match expected {
            Ok((eps, prefix)) => {
                assert_eq!(
                    got,
                    Ok(StoreUri { endpoints: eps.iter().map(|s| s.to_string()).collect(), prefix: prefix.into() })
                )
            }
            Err(text) => {
                let e = got.expect_err(uri);
                assert_eq!(
                    (e.code, e.to_string()),
                    (codes::INVALID_ARG, format!("invalid argument: store URI '{uri}': {text}"))
                );
            }
        }
    }

    #[test]
    fn store_uris_parse_or_fail_with_one_line() {
        check("etcd://127.0.0.1:2379/fleet", Ok((&["127.0.0.1:2379"], "/fleet")));
        check("etcd://a:1,b:2/x/y/", Ok((&["a:1", "b:2"], "/x/y")));
        check("sqlite:///x", Err("the scheme must be etcd://"));
        check("etcd://a:1", Err("a /PREFIX path is required"));
        check("etcd://a:1/", Err("a /PREFIX path is required"));
        check("etcd://u:p@a:1/x", Err("credentials belong in the store config file, never in the URI"));
        check("etcd://a/x", Err("every member must be host:port"));
        check("etcd://a:0/x", Err("every member must be host:port"));
        check("etcd://a:1,/x", Err("every member must be host:port"));
        check("etcd://a:1/x?tls=1", Err("no query or fragment is allowed"));
        check("etcd://a:1/x//y", Err("the prefix must be non-empty path segments"));
    }

    #[test]
    fn config_files_parse() {
        let p = Path::new("/c");
        let cfg = StoreConfig::parse(p, "# fleet\nhost = h1\nuser=root\npassword = pw\nlease-ttl = 3\n").unwrap();
        assert_eq!(
            cfg,
            StoreConfig { host: "h1".into(), user: Some(("root".into(), "pw".into())), lease_ttl: 3, tls: None }
        );
        let cfg =
            StoreConfig::parse(Path::new("/etc/v/store.conf"), "ca = ca.pem\ncert = /k/c.pem\nkey = k.pem\n").unwrap();
        let want = TlsFiles { ca: "/etc/v/ca.pem".into(), identity: Some(("/k/c.pem".into(), "/etc/v/k.pem".into())) };
        assert_eq!(cfg.tls, Some(want));
        let e = StoreConfig::parse(p, "ca = a\ncert = c\n").unwrap_err();
        assert_eq!(e.to_string(), "invalid argument: store config '/c': cert and key go together");
        let e = StoreConfig::parse(p, "cert = c\nkey = k\n").unwrap_err();
        assert_eq!(e.to_string(), "invalid argument: store config '/c': a client certificate needs the cluster's ca");
        let e = StoreConfig::parse(p, "lease-ttl = 0\n").unwrap_err();
        assert_eq!(e.to_string(), "invalid argument: store config '/c' line 1: lease-ttl must be 1..=3600 seconds");
        let e = StoreConfig::parse(p, "user = u\n").unwrap_err();
        assert_eq!(e.to_string(), "invalid argument: store config '/c': user and password go together");
    }
}
