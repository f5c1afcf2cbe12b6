//! The key layout under the store's prefix `P` (see the crate documentation).

/// Builds the keys of one store prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

/// Snapshot names are data: hex-encoded in keys, so no name can reach into another key.
pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// The first key after every key starting with `prefix` (which ends in `/`, so bumping its
/// last byte is enough).
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut b = prefix.as_bytes().to_vec();
    if let Some(last) = b.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&b).into_owned()
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }
    /// `P` itself.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }
    /// `P/hosts/<host>`: the host's lease id, attached to that lease.
    pub(crate) fn host(&self, host: &str) -> String {
        format!("{}/hosts/{}", self.prefix, hex(host))
    }
    /// `P/owner/<dom>`: the owning host's name, attached to its lease.
    pub(crate) fn owner(&self, dom: &str) -> String {
        format!("{}/owner/{}", self.prefix, hex(dom))
    }
    /// `P/ptr/<dom>`: `<gid>\n<writer host>\n<write id>`, the live generation's id, the host
    /// that wrote it and the write's own id. Apart from the generations, so a watch of `P/ptr/`
    /// sees one event per commit.
    pub(crate) fn pointer(&self, dom: &str) -> String {
        format!("{}{}", self.pointers(), hex(dom))
    }
    /// `P/ptr/`: every domain's pointer.
    pub(crate) fn pointers(&self) -> String {
        format!("{}/ptr/", self.prefix)
    }
    /// `P/dom/<dom>/g/`: every generation of the domain.
    pub(crate) fn generations(&self, dom: &str) -> String {
        format!("{}/dom/{}/g/", self.prefix, hex(dom))
    }
    /// `P/dom/<dom>/g/<gid>/`: one generation.
    pub(crate) fn generation(&self, dom: &str, gid: &str) -> String {
        format!("{}{gid}/", self.generations(dom))
    }
    /// `P/dom/<dom>/g/<gid>/current`: the current snapshot's name.
    pub(crate) fn current(&self, dom: &str, gid: &str) -> String {
        format!("{}current", self.generation(dom, gid))
    }
    /// `P/dom/<dom>/g/<gid>/s/<hex(name)>`: `SEQ\n` then the snapshot's XML.
    pub(crate) fn snapshot(&self, dom: &str, gid: &str, name_hex: &str) -> String {
        format!("{}s/{name_hex}", self.generation(dom, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_prefixes_end() {
        assert_eq!(unhex(&hex("s/1 ü")).as_deref(), Some("s/1 ü"));
        assert_eq!(prefix_end("/p/dom/x/g/"), "/p/dom/x/g0");
        let k = Keys::new("/fleet");
        assert_eq!(k.snapshot("d", "g1", &hex("a")), "/fleet/dom/64/g/g1/s/61");
        assert_eq!(k.owner("d"), "/fleet/owner/64");
    }
}
