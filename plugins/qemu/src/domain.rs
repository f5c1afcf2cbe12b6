//! The qemu view of a domain definition: the model's subset (name, uuid, memory, vcpus) plus
//! the file disks qemu needs (source, explicit format, target, read-only), and the qemu
//! command line built from it. Formats are never probed: a disk without `<driver type=…>` or
//! with a format other than qcow2/raw is refused at define time.

use std::path::{Path, PathBuf};

use quick_xml::{Reader, events::Event};
use virtplug_plugin_sdk::{Error, Result, codes, model::domain::DomainDef};

/// Image format of a disk, as the XML states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// qcow2: internal snapshots possible.
    Qcow2,
    /// raw: no internal snapshots.
    Raw,
}

impl Format {
    /// qemu's driver name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qcow2 => "qcow2",
            Self::Raw => "raw",
        }
    }
}

/// One file disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Target (`vda`); also the stem of the stable node names.
    pub target: String,
    /// Image path.
    pub path: PathBuf,
    /// Stated format.
    pub format: Format,
    /// `<readonly/>` or a cdrom.
    pub readonly: bool,
    /// `<shareable/>`: other hosts may write the image too (external snapshots refuse it).
    pub shareable: bool,
}

impl Disk {
    /// Stable node name of the format layer (what QMP snapshot jobs name).
    pub fn node(&self) -> String {
        format!("{}-format", self.target)
    }
    /// Stable node name of the file layer.
    pub fn file_node(&self) -> String {
        format!("{}-storage", self.target)
    }
    /// Whether internal snapshots cover this disk (writable qcow2).
    pub fn snapshots_internally(&self) -> bool {
        !self.readonly && self.format == Format::Qcow2
    }
}

/// A domain definition the qemu driver can run.
#[derive(Debug, Clone)]
pub struct QemuDef {
    /// The model's parse.
    pub def: DomainDef,
    /// File disks in document order.
    pub disks: Vec<Disk>,
}

fn unsupported(msg: impl Into<String>) -> Error {
    Error::new(codes::CONFIG_UNSUPPORTED, msg)
}

#[derive(Default)]
struct DiskDraft {
    disk_type: String,
    device: String,
    driver_type: Option<String>,
    source: Option<String>,
    target: Option<String>,
    readonly: bool,
    shareable: bool,
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn finish(d: DiskDraft) -> Result<Option<Disk>> {
    let target = d.target.ok_or_else(|| Error::new(codes::XML_ERROR, "missing disk target"))?;
    if d.device != "disk" && d.device != "cdrom" {
        return Err(unsupported(format!("disk '{target}': device '{}' is not supported", d.device)));
    }
    if d.disk_type != "file" {
        return Err(unsupported(format!("disk '{target}': only file disks are supported, not '{}'", d.disk_type)));
    }
    let Some(source) = d.source else {
        if d.device == "cdrom" {
            return Ok(None); // empty drive
        }
        return Err(Error::new(codes::XML_ERROR, format!("disk '{target}' has no source file")));
    };
    let format = match d.driver_type.as_deref() {
        Some("qcow2") => Format::Qcow2,
        Some("raw") => Format::Raw,
        Some(other) => {
            return Err(unsupported(format!("unknown driver format value '{other}' for disk '{target}'")));
        }
        None => {
            return Err(unsupported(format!(
                "disk '{target}' has no explicit format (<driver type='qcow2|raw'/>); image formats are never probed"
            )));
        }
    };
    if !Path::new(&source).is_absolute() {
        return Err(unsupported(format!("disk '{target}': source '{source}' must be an absolute path")));
    }
    if !target.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(unsupported(format!("disk target '{target}' must be alphanumeric")));
    }
    let readonly = d.readonly || d.device == "cdrom";
    Ok(Some(Disk { target, path: PathBuf::from(source), format, readonly, shareable: d.shareable }))
}

/// Reads the `<devices><disk>` elements of a domain document.
pub fn parse_disks(xml: &str) -> Result<Vec<Disk>> {
    let mut r = Reader::from_str(xml);
    let mut depth_path: Vec<String> = Vec::new();
    let mut cur: Option<DiskDraft> = None;
    let mut out: Vec<Disk> = Vec::new();
    loop {
        let ev = r.read_event().map_err(|e| Error::new(codes::XML_DETAIL, format!("domain XML: {e}")))?;
        let (e, empty) = match &ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                if depth_path.pop().as_deref() == Some("disk")
                    && depth_path.len() == 2
                    && let Some(d) = cur.take().map(finish).transpose()?.flatten()
                {
                    out.push(d);
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let in_disk = depth_path.len() == 3 && depth_path[2] == "disk";
        if depth_path.len() == 2 && depth_path[1] == "devices" && name == "disk" {
            cur = Some(DiskDraft {
                disk_type: attr(e, "type").unwrap_or_else(|| "file".into()),
                device: attr(e, "device").unwrap_or_else(|| "disk".into()),
                ..Default::default()
            });
        } else if in_disk && let Some(d) = cur.as_mut() {
            match name.as_str() {
                "driver" => d.driver_type = attr(e, "type"),
                "source" => d.source = attr(e, "file"),
                "target" => d.target = attr(e, "dev"),
                "readonly" => d.readonly = true,
                "shareable" => d.shareable = true,
                _ => {}
            }
        }
        if empty {
            if name == "disk"
                && depth_path.len() == 2
                && let Some(d) = cur.take().map(finish).transpose()?.flatten()
            {
                out.push(d);
            }
        } else {
            depth_path.push(name);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for d in &out {
        if !seen.insert(d.target.clone()) {
            return Err(unsupported(format!("target '{}' duplicated for disk sources", d.target)));
        }
    }
    Ok(out)
}

impl QemuDef {
    /// Parses a domain document for this driver.
    pub fn parse(xml: &str) -> Result<Self> {
        Self::checked(DomainDef::parse(xml)?)
    }

    /// [`QemuDef::parse`] of a document given to define a domain: libvirt's generic checks of
    /// a definition first ([`DomainDef::parse_definition`]), then this driver's.
    pub fn parse_definition(xml: &str) -> Result<Self> {
        Self::checked(DomainDef::parse_definition(xml)?)
    }

    /// This driver's checks of a parsed document, and its disks.
    fn checked(def: DomainDef) -> Result<Self> {
        if def.domain_type != "qemu" && def.domain_type != "kvm" {
            return Err(unsupported(format!(
                "domain type '{}' is not supported by the qemu driver (qemu or kvm)",
                def.domain_type
            )));
        }
        if def.name.contains('/') || def.name.starts_with('.') {
            return Err(Error::new(codes::XML_ERROR, format!("invalid domain name '{}'", def.name)));
        }
        let disks = parse_disks(&def.xml)?;
        Ok(Self { def, disks })
    }

    /// Writable qcow2 disks, in order (what internal snapshots cover).
    pub fn snapshot_disks(&self) -> impl Iterator<Item = &Disk> {
        self.disks.iter().filter(|d| d.snapshots_internally())
    }

    /// libvirt's refusal for writable non-qcow2 disks (CONFIG_UNSUPPORTED).
    pub fn check_internal_snapshot_possible(&self) -> Result<()> {
        if let Some(d) = self.disks.iter().find(|d| !d.readonly && d.format != Format::Qcow2) {
            return Err(unsupported(format!(
                "internal snapshot for disk {} unsupported for storage type {}",
                d.target,
                d.format.as_str()
            )));
        }
        Ok(())
    }

    /// The qemu command line (without the binary): paused (`-S`), no defaults, QMP on
    /// `monitor`, daemonised with `pidfile`.
    pub fn argv(&self, kvm: bool, monitor: &Path, pidfile: &Path) -> Vec<String> {
        let d = &self.def;
        let mut a: Vec<String> = vec![
            "-name".into(),
            format!("guest={},debug-threads=on", d.name.replace(',', ",,")),
            "-uuid".into(),
            d.uuid.clone(),
            "-machine".into(),
            format!("pc,accel={}", if kvm { "kvm" } else { "tcg" }),
            "-m".into(),
            format!("{}", (d.max_memory_kib / 1024).max(16)),
            "-smp".into(),
            d.vcpus.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-S".into(),
            "-no-shutdown".into(),
            "-chardev".into(),
            format!(
                "socket,id=charmonitor,path={},server=on,wait=off",
                monitor.display().to_string().replace(',', ",,")
            ),
            "-mon".into(),
            "chardev=charmonitor,id=monitor,mode=control".into(),
            "-pidfile".into(),
            pidfile.display().to_string(),
            "-daemonize".into(),
        ];
        for disk in &self.disks {
            let file = serde_json::json!({
                "driver": "file", "filename": disk.path.display().to_string(),
                "node-name": disk.file_node(), "auto-read-only": true,
            });
            let fmt = serde_json::json!({
                "driver": disk.format.as_str(), "node-name": disk.node(), "file": disk.file_node(),
                "read-only": disk.readonly,
            });
            a.extend(["-blockdev".into(), file.to_string(), "-blockdev".into(), fmt.to_string()]);
            a.extend(["-device".into(), format!("virtio-blk-pci,drive={},id={}", disk.node(), disk.target)]);
        }
        a
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn dom(disks: &str) -> String {
        format!(
            "<domain type='qemu'><name>d</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu><devices>{disks}</devices></domain>"
        )
    }

    #[test]
    fn disks() {
        let x = dom(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/a.qcow2'/><target dev='vda' bus='virtio'/></disk>\
                     <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/b.raw'/><target dev='vdb'/><readonly/></disk>\
                     <disk type='file' device='cdrom'><target dev='hdc'/></disk>",
        );
        let q = QemuDef::parse(&x).unwrap();
        assert_eq!(q.disks.len(), 2);
        assert_eq!(
            q.disks[0],
            Disk {
                target: "vda".into(),
                path: "/a.qcow2".into(),
                format: Format::Qcow2,
                readonly: false,
                shareable: false
            }
        );
        assert!(q.disks[1].readonly);
        assert!(q.check_internal_snapshot_possible().is_ok());
        assert_eq!(q.snapshot_disks().count(), 1);
    }

    #[test]
    fn refusals() {
        let check = |disks: &str, code: u32, msg: &str| {
            let e = QemuDef::parse(&dom(disks)).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (code, msg), "{disks}");
        };
        check(
            "<disk type='file' device='disk'><driver type='vmdk'/><source file='/a'/><target dev='vda'/></disk>",
            codes::CONFIG_UNSUPPORTED,
            "unknown driver format value 'vmdk' for disk 'vda'",
        );
        check(
            "<disk type='file' device='disk'><source file='/a'/><target dev='vda'/></disk>",
            codes::CONFIG_UNSUPPORTED,
            "disk 'vda' has no explicit format (<driver type='qcow2|raw'/>); image formats are never probed",
        );
        check(
            "<disk type='block' device='disk'><driver type='raw'/><source dev='/dev/x'/><target dev='vda'/></disk>",
            codes::CONFIG_UNSUPPORTED,
            "disk 'vda': only file disks are supported, not 'block'",
        );
        let raw = QemuDef::parse(&dom(
            "<disk type='file' device='disk'><driver type='raw'/><source file='/b.raw'/><target dev='vdb'/></disk>",
        ))
        .unwrap();
        let e = raw.check_internal_snapshot_possible().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported configuration: internal snapshot for disk vdb unsupported for storage type raw"
        );
    }
}
