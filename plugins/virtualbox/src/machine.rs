//! One machine as the plugin sees it during one operation: `showvminfo --machinereadable`
//! (one invocation: name, UUID, `CfgFile`, state, memory, and the snapshot tree with the
//! current one) joined with the read-only `.vbox` file (timestamps, online flag,
//! descriptions). Snapshot name resolution and the libvirt records live here too.

use virtplug_plugin_sdk::{DomainInfo, Error, Result, SnapshotInfo, codes, flags::domain_state as st, model::xml};

use crate::{parse, runner::Runner, settings};

/// One snapshot, joined from the CLI tree and the settings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub uuid: String,
    pub name: String,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub time: i64,
    pub online: bool,
    pub description: String,
}

/// A machine and its snapshots (pre-order).
#[derive(Debug, Clone)]
pub struct Machine {
    pub info: parse::VmInfo,
    pub uuid: String,
    pub name: String,
    pub state: String,
    pub snaps: Vec<Snap>,
    pub current: Option<usize>,
}

fn unparseable(what: &str, e: &parse::ParseError) -> Error {
    Error::internal(format!("VBoxManage printed unparseable output for {what}: {}", e.0))
}

/// libvirt state and reason for a `VMState` short name (as libvirt's vbox driver maps
/// MachineState: Running → running; Paused/Teleporting/LiveSnapshotting → paused; Stuck →
/// blocked; Stopping → shutdown; PoweredOff/Saved/Teleported → shut off; Aborted → crashed).
pub fn libvirt_state(vmstate: &str) -> (u32, u32) {
    match vmstate {
        "running" | "onlinesnapshotting" | "deletingsnapshotlive" => (st::RUNNING, 0),
        "paused" | "teleporting" | "livesnapshotting" | "teleportingpausedvm" | "deletingsnapshotlivepaused" => {
            (st::PAUSED, 0)
        }
        "gurumeditation" => (st::BLOCKED, 0),
        "stopping" => (st::SHUTDOWN, 0),
        // VIR_DOMAIN_SHUTOFF_SAVED = 5.
        "saved" | "aborted-saved" => (st::SHUTOFF, 5),
        "poweroff" | "teleported" => (st::SHUTOFF, 0),
        "aborted" => (st::CRASHED, 0),
        _ => (st::NOSTATE, 0),
    }
}

impl Machine {
    /// `showvminfo <vm> --machinereadable` (one invocation), without reading the settings file.
    pub fn info_only(runner: &Runner, vm: &str) -> Result<Self> {
        // An unknown machine gets libvirt's sentence, not VirtualBox's ("Could not find a
        // registered machine named …"), whichever operation asked.
        let out = runner.check(&["showvminfo", vm, "--machinereadable"]).map_err(|e| {
            if e.code != codes::NO_DOMAIN {
                e
            } else if parse::parse_uuid(vm).is_some() {
                Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{vm}'"))
            } else {
                Error::no_domain(vm)
            }
        })?;
        let info = parse::showvminfo(&out.stdout).map_err(|e| unparseable("showvminfo", &e))?;
        let uuid = info.get("UUID").and_then(parse::parse_uuid).unwrap_or_default();
        Ok(Self {
            uuid,
            name: info.get("name").unwrap_or_default().to_owned(),
            state: info.get("VMState").unwrap_or_default().to_owned(),
            info,
            snaps: Vec::new(),
            current: None,
        })
    }

    /// [`Machine::info_only`] plus the snapshot tree joined with the `.vbox` file. The two must
    /// agree (same UUIDs, parents and current); otherwise the output was truncated or the
    /// machine changed in between, reported as an error rather than guessed at.
    pub fn load(runner: &Runner, vm: &str) -> Result<Self> {
        let mut m = Self::info_only(runner, vm)?;
        let cfg = m.info.get("CfgFile").unwrap_or_default().to_owned();
        let file = settings::load(&cfg)?;
        let mismatch = |why: String| {
            Error::new(
                codes::OPERATION_FAILED,
                format!(
                    "VBoxManage's snapshot list and the settings file '{cfg}' disagree ({why}); the output was truncated or the machine changed meanwhile"
                ),
            )
        };
        if file.machine_uuid != m.uuid {
            return Err(mismatch(format!("machine UUID {} vs {}", m.uuid, file.machine_uuid)));
        }
        let tree = &m.info.tree;
        if tree.snaps.len() != file.snaps.len() {
            return Err(mismatch(format!("{} snapshots listed, {} in the file", tree.snaps.len(), file.snaps.len())));
        }
        let mut snaps: Vec<Snap> = Vec::with_capacity(tree.snaps.len());
        for c in &tree.snaps {
            let f =
                file.snaps.get(&c.uuid).ok_or_else(|| mismatch(format!("snapshot {} is not in the file", c.uuid)))?;
            let parent_uuid = c.parent.map(|p| tree.snaps[p].uuid.clone());
            if f.parent != parent_uuid {
                return Err(mismatch(format!("parent of snapshot {}", c.uuid)));
            }
            snaps.push(Snap {
                uuid: c.uuid.clone(),
                name: c.name.clone(),
                parent: c.parent,
                children: Vec::new(),
                time: f.time,
                online: f.online,
                description: f.description.clone(),
            });
        }
        for i in 0..snaps.len() {
            if let Some(p) = snaps[i].parent {
                snaps[p].children.push(i);
            }
        }
        let current_uuid = tree.current.map(|i| tree.snaps[i].uuid.clone());
        if !snaps.is_empty() && current_uuid != file.current {
            return Err(mismatch("current snapshot".to_owned()));
        }
        m.current = tree.current;
        m.snaps = snaps;
        Ok(m)
    }

    /// Whether the machine is active (running, paused or in an online transition).
    pub fn is_active(&self) -> bool {
        !matches!(libvirt_state(&self.state).0, st::SHUTOFF | st::CRASHED | st::NOSTATE)
    }

    /// Resolves a snapshot argument: a UUID (braces optional) that some snapshot has wins; else
    /// the exact name, which must be unique — an ambiguous name is an error listing the UUIDs.
    pub fn resolve(&self, arg: &str) -> Result<usize> {
        if let Some(u) = parse::parse_uuid(arg)
            && let Some(i) = self.snaps.iter().position(|s| s.uuid == u)
        {
            return Ok(i);
        }
        let hits: Vec<usize> = (0..self.snaps.len()).filter(|&i| self.snaps[i].name == arg).collect();
        match hits.as_slice() {
            [] => Err(Error::no_snapshot(arg)),
            [one] => Ok(*one),
            many => {
                let uuids: Vec<&str> = many.iter().map(|&i| self.snaps[i].uuid.as_str()).collect();
                Err(Error::invalid_arg(format!(
                    "snapshot name '{arg}' is ambiguous: {} snapshots of domain '{}' have it ({}); name one by its UUID",
                    many.len(),
                    self.name,
                    uuids.join(", ")
                )))
            }
        }
    }

    /// The libvirt list record of snapshot `i`. VirtualBox keeps the metadata itself, so
    /// `has_metadata` is false (as libvirt's vbox and esx drivers report).
    pub fn snapshot_info(&self, i: usize) -> SnapshotInfo {
        let s = &self.snaps[i];
        SnapshotInfo {
            name: s.name.clone(),
            parent: s.parent.map(|p| self.snaps[p].name.clone()),
            creation_time: s.time,
            state: if s.online { st::RUNNING } else { st::SHUTOFF },
            current: self.current == Some(i),
            has_metadata: false,
            external: false,
            disk_only: false,
        }
    }

    /// libvirt's snapshot XML for snapshot `i`, in the style of libvirt's vbox/esx drivers:
    /// name, description, state, parent, creation time, `<domain><uuid>`.
    pub fn snapshot_xml(&self, i: usize) -> String {
        let s = &self.snaps[i];
        let def = xml::SnapshotDef {
            name: s.name.clone(),
            description: (!s.description.is_empty()).then(|| s.description.clone()),
            state: if s.online { st::RUNNING } else { st::SHUTOFF },
            parent: s.parent.map(|p| self.snaps[p].name.clone()),
            creation_time: s.time,
            ..xml::SnapshotDef::default()
        };
        xml::format(&def, Some(&self.uuid), xml::FormatFlags::default())
    }

    /// Indices of the subtree at `i`, leaves first (post-order), ending with `i`.
    pub fn leaves_first(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for &c in &self.snaps[i].children {
            out.extend(self.leaves_first(c));
        }
        out.push(i);
        out
    }

    /// The libvirt domain record. `id` is given by the caller (VirtualBox has no domain ids).
    pub fn domain_info(&self, id: i32) -> DomainInfo {
        let (state, reason) = libvirt_state(&self.state);
        let mem = self.info.get("memory").and_then(|m| m.parse::<u64>().ok()).unwrap_or(0) * 1024;
        DomainInfo {
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            id: if self.is_active() { id } else { -1 },
            state,
            reason,
            max_memory_kib: mem,
            memory_kib: mem,
            vcpus: self.info.get("cpus").and_then(|c| c.parse().ok()).unwrap_or(1),
            persistent: true,
        }
    }
}
