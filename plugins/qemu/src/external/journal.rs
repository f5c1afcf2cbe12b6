//! The journal of external revert and delete, and settling leftovers at open.
//!
//! A revert or delete writes one [`Step`] record before it touches an image and removes it once
//! the metadata matches the images. A leftover record means the process stopped in between; the
//! next read-write open settles it (see [`settle`]):
//!
//! - `revert`: the new overlays may exist but the definition may still be the old one. If the
//!   stored definition is the new one the revert is complete; otherwise the overlays it
//!   created are removed (nothing points at them) and the domain keeps its old chain.
//! - `delete`: the merge is rolled forward. Committing an overlay into its backing image is
//!   idempotent (the overlay still overrides what it already copied), so the merge is run again
//!   offline, the dependants are repointed, the metadata is written and only then are the
//!   merged files removed.
//!
//! Part A's [`super::Pending`] (a running create's disk switch) is settled here too: if the
//! domain still runs on the new overlays, the metadata and definition are saved; otherwise the
//! switch did not happen (or qemu died before anyone could use the overlay) and the overlays this
//! create made are removed.
//!
//! Records live in `<lib_dir>/external/<uuid>.json` (they must outlive a stopped qemu, whose
//! runtime directory is removed), written with temp file + fsync + rename.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};
use virtplug_plugin_sdk::{
    Edit, Error, Result, codes,
    model::{
        store::DomainRecord,
        xml::{self, ParseFlags},
    },
};

use crate::{
    domain::QemuDef,
    driver::{Inner, QemuDriver, is_active},
    uri::Config,
};

/// What a journaled operation is about to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// `revert` or `delete`.
    pub op: String,
    /// The snapshot reverted to or deleted.
    pub snapshot: String,
    /// The domain definition before the operation.
    pub old_domain_xml: String,
    /// The definition once the operation is complete.
    pub new_domain_xml: String,
    /// Files this operation creates (removed when it is undone).
    pub created: Vec<PathBuf>,
    /// Merges of a delete: (overlay, frozen image, frozen format, dependants to repoint).
    pub merges: Vec<Merge>,
    /// Files a delete removes once the metadata is written besides the merged overlays (the
    /// snapshot's external memory file, as libvirt 9.1 does; 9.0 leaked it).
    pub remove: Vec<PathBuf>,
}

/// One disk's merge of a delete: `overlay` committed into `frozen`, `dependants` repointed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The snapshot's overlay (removed after the merge).
    pub overlay: PathBuf,
    /// The snapshot's frozen image (receives the overlay's data).
    pub frozen: PathBuf,
    /// Its format.
    pub frozen_format: String,
    /// Images whose backing file is `overlay` (rebased onto `frozen`, unsafe: same data).
    pub dependants: Vec<PathBuf>,
}

/// A fault to inject in tests (`VIRTPLUG_QEMU_FAULT=<name>`, the variable the other fault tests
/// use): `revert-crash` stops a revert after its overlays exist (`revert-crash-switched`: after a running
/// qemu switched to them in place), `delete-crash` a delete after
/// its merges, both as a crash would (no cleanup, the record stays); `kill-during-commit` kills
/// qemu once its block-commit job started.
pub(crate) fn fault(name: &str) -> bool {
    std::env::var("VIRTPLUG_QEMU_FAULT").is_ok_and(|v| v == name)
}

fn path(cfg: &Config, uuid: &str) -> PathBuf {
    cfg.lib_dir.join("external").join(format!("{uuid}.json"))
}

fn fail(p: &Path, e: &std::io::Error) -> Error {
    Error::new(codes::OPERATION_FAILED, format!("cannot write journal '{}': {e}", p.display()))
}

impl Step {
    fn to_json(&self) -> Value {
        let merges: Vec<Value> = self
            .merges
            .iter()
            .map(|m| {
                json!({"overlay": m.overlay, "frozen": m.frozen, "frozen_format": m.frozen_format,
                       "dependants": m.dependants})
            })
            .collect();
        json!({"op": self.op, "snapshot": self.snapshot, "old_domain_xml": self.old_domain_xml,
               "new_domain_xml": self.new_domain_xml, "created": self.created, "merges": merges,
               "remove": self.remove})
    }

    fn from_json(v: &Value) -> Option<Self> {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let paths = |v: &Value, k: &str| -> Option<Vec<PathBuf>> {
            v.get(k)?.as_array()?.iter().map(|p| p.as_str().map(PathBuf::from)).collect()
        };
        let merges = v
            .get("merges")?
            .as_array()?
            .iter()
            .map(|m| {
                Some(Merge {
                    overlay: PathBuf::from(s(m, "overlay")?),
                    frozen: PathBuf::from(s(m, "frozen")?),
                    frozen_format: s(m, "frozen_format")?,
                    dependants: paths(m, "dependants")?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            op: s(v, "op")?,
            snapshot: s(v, "snapshot")?,
            old_domain_xml: s(v, "old_domain_xml")?,
            new_domain_xml: s(v, "new_domain_xml")?,
            created: paths(v, "created")?,
            merges,
            remove: paths(v, "remove").unwrap_or_default(),
        })
    }

    /// Writes the record of domain `uuid` durably.
    pub fn write(&self, cfg: &Config, uuid: &str) -> Result<()> {
        let p = path(cfg, uuid);
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).map_err(|e| fail(&p, &e))?;
        }
        let tmp = p.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp).map_err(|e| fail(&p, &e))?;
            f.write_all(self.to_json().to_string().as_bytes()).map_err(|e| fail(&p, &e))?;
            f.sync_all().map_err(|e| fail(&p, &e))?;
        }
        fs::rename(&tmp, &p).map_err(|e| fail(&p, &e))
    }

    /// The record of `uuid`, if any.
    pub fn read(cfg: &Config, uuid: &str) -> Result<Option<Self>> {
        let p = path(cfg, uuid);
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::internal(format!("cannot read journal '{}': {e}", p.display()))),
        };
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| Self::from_json(&v))
            .map(Some)
            .ok_or_else(|| Error::internal(format!("journal '{}' is unreadable", p.display())))
    }

    /// Removes the record of `uuid`.
    pub fn remove(cfg: &Config, uuid: &str) {
        let _ = fs::remove_file(path(cfg, uuid));
    }
}

/// Settles every leftover record (revert, delete, part A's running create) of every domain.
/// Called at a read-write open, after the domains' states were refreshed. A record that cannot
/// be settled now (an image is locked, say) stays for the next open; the error is not fatal to
/// the connection.
pub fn settle(drv: &QemuDriver, g: &mut Inner) -> Result<()> {
    let mut first = Ok(());
    for d in g.store.domains()? {
        let res = settle_domain(drv, g, &d);
        if first.is_ok() {
            first = res;
        }
    }
    first
}

/// One domain's records; a record stays when settling it fails.
fn settle_domain(drv: &QemuDriver, g: &mut Inner, d: &DomainRecord) -> Result<()> {
    if let Some(step) = Step::read(&drv.cfg, &d.uuid)? {
        settle_step(drv, g, d, &step)?;
        Step::remove(&drv.cfg, &d.uuid);
    }
    let d = g.store.domain_by_uuid(&d.uuid)?;
    if let Some(p) = super::Pending::read(&drv.cfg, &d.uuid)? {
        settle_pending(drv, g, &d, &p)?;
        super::Pending::remove(&drv.cfg, &d.uuid);
    }
    Ok(())
}

fn settle_step(drv: &QemuDriver, g: &mut Inner, d: &DomainRecord, step: &Step) -> Result<()> {
    match step.op.as_str() {
        "revert" => {
            if d.xml == step.new_domain_xml {
                return Ok(());
            }
            // a running qemu already switched in place: the definition and current follow it
            let new = QemuDef::parse(&step.new_domain_xml)?;
            let switched = is_active(d.state)
                && drv.qmp(g, d).is_ok_and(|q| {
                    new.disks
                        .iter()
                        .filter(|k| step.created.contains(&k.path))
                        .all(|k| top_file(q, &k.target).as_deref() == Some(k.path.as_path()))
                });
            if switched {
                let current = [Edit::SetCurrent(step.snapshot.clone())];
                return g.commit(&d.uuid, &current, |w| w.define_domain(&new.def, d.state, d.reason, d.id).map(drop));
            }
            // the definition was never switched: the new overlays are unreferenced
            for c in &step.created {
                let _ = fs::remove_file(c);
            }
            Ok(())
        }
        "delete" => super::delete::roll_forward(drv, g, d, step),
        other => Err(Error::internal(format!("journal names unknown operation '{other}'"))),
    }
}

/// The image file behind the device of disk `target` (`query-block`).
fn top_file(q: &mut crate::qmp::Qmp, target: &str) -> Option<PathBuf> {
    let v = q.execute("query-block", None).ok()?;
    let want = format!("/{target}/virtio-backend");
    v.as_array()?
        .iter()
        .find(|b| b["qdev"].as_str().is_some_and(|d| d.ends_with(&want) || d == target))
        .and_then(|b| b.pointer("/inserted/file")?.as_str().map(PathBuf::from))
}

/// A running create's switch: finished if qemu runs on the new overlays, else undone.
fn settle_pending(drv: &QemuDriver, g: &mut Inner, d: &DomainRecord, p: &super::Pending) -> Result<()> {
    if d.xml == p.domain_xml {
        return Ok(()); // definition saved; only the record's removal was missing
    }
    let switched = is_active(d.state)
        && drv.qmp(g, d).is_ok_and(|q| {
            p.disks.iter().all(|(disk, node)| super::top_node(q, &disk.target).is_ok_and(|n| &n == node))
        });
    if switched {
        let def = QemuDef::parse(&p.domain_xml)?;
        let sdef = if p.metadata {
            // the internal format (with <active>) when the writer used it, else the public one
            let internal = ParseFlags { internal: true, redefine: true, ..Default::default() };
            let public = ParseFlags { redefine: true, ..Default::default() };
            Some(xml::parse(&p.snapshot_xml, internal).or_else(|_| xml::parse(&p.snapshot_xml, public))?)
        } else {
            None
        };
        // on a fleet store the snapshot may be there already (its commit comes first)
        let edits: Vec<Edit> =
            sdef.filter(|s| g.snap(&d.uuid, &s.name).is_err()).map(Edit::Create).into_iter().collect();
        g.commit(&d.uuid, &edits, |w| w.define_domain(&def.def, d.state, d.reason, d.id).map(drop))
    } else {
        // never switched: a snapshot a fleet store recorded before the local commit failed goes too
        if p.metadata && g.fleet.is_some() && g.snap(&d.uuid, &p.snapshot).is_ok() {
            g.commit_snaps(&d.uuid, &[Edit::Delete(p.snapshot.clone(), 0)])?;
        }
        for (disk, _) in &p.disks {
            if disk.created {
                let _ = fs::remove_file(&disk.overlay);
            }
        }
        Ok(())
    }
}
