//! Connection URIs (`vsphere://[user@]host[:port]/[DC[/cluster]/host]?no_verify=1&transport=…`)
//! and where the password comes from: `VIRTPLUG_VSPHERE_PASSWORD`, or a credentials file in
//! libvirt's `auth.conf` format. The password is never taken from the URI, never formatted by
//! `Debug`, and never put into an error.

use std::{fmt, path::PathBuf};

use virtplug_plugin_sdk::{Error, Result, codes};

/// Environment variable holding the password.
pub const PASSWORD_ENV: &str = "VIRTPLUG_VSPHERE_PASSWORD";
/// Environment variable naming the credentials file (libvirt `auth.conf` format).
pub const AUTH_FILE_ENV: &str = "VIRTPLUG_AUTH_FILE";

/// A parsed connection URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// User from the URI, if any.
    pub user: Option<String>,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `https` (default) or `http`.
    pub https: bool,
    /// `no_verify=1`: accept any TLS certificate.
    pub no_verify: bool,
    /// vCenter inventory path below the root: datacenter, then cluster/host or host.
    pub path: Vec<String>,
}

impl Target {
    /// The SOAP endpoint.
    pub fn sdk_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}/sdk", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}/sdk", self.host, self.port)
        }
    }

    /// `host:port` for messages.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

fn bad_uri(msg: impl Into<String>) -> Error {
    Error::new(codes::INVALID_ARG, msg)
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| bad_uri("malformed percent escape in URI"))?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| bad_uri("malformed percent escape in URI"))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_uri("URI is not valid UTF-8 after unescaping"))
}

/// Parses a `vsphere://` URI.
pub fn parse(uri: &str) -> Result<Target> {
    let rest = uri
        .strip_prefix("vsphere://")
        .ok_or_else(|| bad_uri("expected a URI of the form vsphere://[user@]host[:port]/[path][?params]"))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, p),
        None => (before_query, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let user = match userinfo {
        Some(u) if u.contains(':') => {
            return Err(bad_uri(
                "passwords are not accepted in vsphere URIs; set VIRTPLUG_VSPHERE_PASSWORD or use a credentials file",
            ));
        }
        Some("") => None,
        Some(u) => Some(percent_decode(u)?),
        None => None,
    };
    let (host, port) = split_host_port(hostport)?;
    if host.is_empty() {
        return Err(bad_uri("missing host name in vsphere URI"));
    }
    let mut https = true;
    let mut no_verify = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "transport" => {
                https = match v {
                    "https" => true,
                    "http" => false,
                    _ => {
                        return Err(bad_uri(format!(
                            "query parameter 'transport' has unexpected value '{v}' (should be http|https)"
                        )));
                    }
                }
            }
            "no_verify" => {
                no_verify = match v {
                    "0" => false,
                    "1" => true,
                    _ => {
                        return Err(bad_uri(format!(
                            "query parameter 'no_verify' has unexpected value '{v}' (should be 0 or 1)"
                        )));
                    }
                }
            }
            // libvirt ignores unknown parameters (auto_answer, proxy, …); so do we.
            _ => {}
        }
    }
    let port = match port {
        Some(p) => p,
        None if https => 443,
        None => 80,
    };
    let path = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect::<Result<Vec<_>>>()?;
    Ok(Target { user, host, port, https, no_verify, path })
}

fn split_host_port(hp: &str) -> Result<(String, Option<u16>)> {
    let parse_port = |p: &str| p.parse::<u16>().map_err(|_| bad_uri(format!("invalid port '{p}' in vsphere URI")));
    if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad_uri("unterminated IPv6 address in URI"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None => None,
        };
        return Ok((h.to_owned(), port));
    }
    match hp.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_owned(), Some(parse_port(p)?))),
        None => Ok((hp.to_owned(), None)),
    }
}

/// User name and password. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

impl Credentials {
    /// Builds credentials (for tests and embedding).
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self { user: user.into(), password: password.into() }
    }
    /// The password, for the Login body only.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

fn auth_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(AUTH_FILE_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("LIBVIRT_AUTH_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let p = config.join("virtplug").join("auth.conf");
    p.exists().then_some(p)
}

/// Looks `host` up in an `auth.conf`-style text: `[auth-SERVICE-HOST]` (or
/// `[auth-SERVICE-default]`) names a `[credentials-NAME]` group with `authname` and `password`.
/// Services tried: `vsphere`, then libvirt's `esx` and `vpx`; the host's groups before `default`.
pub fn lookup_auth_conf(text: &str, host: &str) -> Option<(Option<String>, Option<String>)> {
    let mut groups: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            groups.push((name.trim().to_owned(), Vec::new()));
        } else if let (Some((k, v)), Some(g)) = (line.split_once('='), groups.last_mut()) {
            g.1.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let get = |group: &str, key: &str| -> Option<String> {
        groups.iter().find(|(n, _)| n == group)?.1.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    for who in [host, "default"] {
        for service in ["vsphere", "esx", "vpx"] {
            if let Some(cred) = get(&format!("auth-{service}-{who}"), "credentials") {
                let group = format!("credentials-{cred}");
                return Some((get(&group, "authname"), get(&group, "password")));
            }
        }
    }
    None
}

/// Resolves the user and password for `target`: user from the URI, else the credentials
/// file's `authname`, else `root`; password from the environment, else the credentials file.
pub fn credentials(target: &Target) -> Result<Credentials> {
    let from_file = match auth_file() {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => lookup_auth_conf(&text, &target.host),
            Err(e) => {
                return Err(Error::new(
                    codes::AUTH_FAILED,
                    format!("cannot read credentials file {}: {e}", path.display()),
                ));
            }
        },
        None => None,
    };
    let (file_user, file_password) = from_file.unwrap_or((None, None));
    let user = target.user.clone().or(file_user).unwrap_or_else(|| "root".to_owned());
    let password = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()).or(file_password).ok_or_else(|| {
        Error::new(
            codes::AUTH_FAILED,
            format!(
                "no password for {user}@{}: set {PASSWORD_ENV} or add it to a credentials file ({AUTH_FILE_ENV})",
                target.host
            ),
        )
    })?;
    Ok(Credentials { user, password })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let t = parse("vsphere://root@127.0.0.1:8989/?no_verify=1&transport=http").unwrap();
        assert_eq!(t.user.as_deref(), Some("root"));
        assert_eq!((t.host.as_str(), t.port, t.https, t.no_verify), ("127.0.0.1", 8989, false, true));
        assert_eq!(t.sdk_url(), "http://127.0.0.1:8989/sdk");
        assert!(t.path.is_empty());
        let t = parse("vsphere://admin%40vsphere.local@vc.example/DC0/DC0_C0/DC0_C0_H0?auto_answer=1").unwrap();
        assert_eq!(t.user.as_deref(), Some("admin@vsphere.local"));
        assert_eq!((t.port, t.https, t.no_verify), (443, true, false));
        assert_eq!(t.path, ["DC0", "DC0_C0", "DC0_C0_H0"]);
        let t = parse("vsphere://[::1]:9000").unwrap();
        assert_eq!(t.sdk_url(), "https://[::1]:9000/sdk");
        assert_eq!(parse("vsphere://h/?transport=http").unwrap().port, 80);
    }

    #[test]
    fn bad_uris_never_echo_a_password() {
        let e = parse("vsphere://root:hunter2@host/").unwrap_err();
        assert_eq!(e.code, codes::INVALID_ARG);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(parse("vsphere://h/?transport=ftp").is_err());
        assert!(parse("vsphere://h:99999/").is_err());
        assert!(parse("esx://h/").is_err());
        assert!(parse("vsphere:///").is_err());
    }

    #[test]
    fn auth_conf_lookup() {
        let text = "[credentials-vcsim]\nauthname=root\npassword=secret\n\n[auth-esx-127.0.0.1]\ncredentials=vcsim\n\n[credentials-other]\npassword=x\n[auth-vsphere-default]\ncredentials=other\n";
        assert_eq!(lookup_auth_conf(text, "127.0.0.1"), Some((Some("root".into()), Some("secret".into()))));
        assert_eq!(lookup_auth_conf(text, "elsewhere"), Some((None, Some("x".into()))));
        assert_eq!(lookup_auth_conf("", "h"), None);
    }

    #[test]
    fn debug_redacts_password() {
        let c = Credentials::new("root", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
