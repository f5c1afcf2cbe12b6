//! The `Driver` implementation. Each snapshot operation's VBoxManage invocations are listed in
//! its comment; none takes more than two, except DELETE_CHILDREN, which VirtualBox can only do
//! one snapshot at a time (`deleteSnapshotAndAllChildren` is E_NOTIMPL).

use std::sync::Arc;

use virtplug_plugin_sdk::{
    DomainInfo, Driver, Error, Result, SnapshotInfo, codes,
    flags::{domain_state as st, snapshot_delete},
    model::xml::{self, SnapshotMode},
};

use crate::{machine::Machine, parse, runner::Runner, watch};

/// One open `vbox:///session` connection.
#[derive(Debug)]
pub struct VboxDriver {
    pub runner: Runner,
    /// Shared with the connection's watcher (`watch.rs`), when one runs.
    pub watch: Option<Arc<watch::Shared>>,
}

impl Drop for VboxDriver {
    /// Ends the watcher.
    fn drop(&mut self) {
        if let Some(w) = &self.watch {
            w.stop();
        }
    }
}

impl VboxDriver {
    /// The domain's id: its 1-based position in `list vms` (as libvirt's vbox driver numbers
    /// running machines); one more invocation, only for active machines.
    fn id_of(&self, m: &Machine) -> Result<i32> {
        if !m.is_active() {
            return Ok(-1);
        }
        let out = self.runner.check(&["list", "vms"])?;
        let vms = parse::list_vms(&out.stdout)
            .map_err(|e| Error::internal(format!("VBoxManage printed unparseable output for list vms: {}", e.0)))?;
        Ok(vms.iter().position(|(_, u)| *u == m.uuid).map_or(-1, |i| i32::try_from(i + 1).unwrap_or(i32::MAX)))
    }

    /// Runs `args` on `dom` (its UUID after the first word) when its state is in `allowed`; the
    /// watcher is told first that the machine is going to the libvirt state `to`, so that it
    /// does not report this connection's own change.
    fn lifecycle(&self, dom: &str, allowed: &[&str], refusal: &str, to: u32, args: &[&str]) -> Result<()> {
        let m = Machine::info_only(&self.runner, dom)?;
        if !allowed.contains(&m.state.as_str()) {
            return Err(Error::operation_invalid(refusal.to_owned()));
        }
        let mut argv = vec![args[0], m.uuid.as_str()];
        argv.extend_from_slice(&args[1..]);
        if let Some(w) = &self.watch {
            w.expect(&m.uuid, to);
        }
        let result = self.runner.check(&argv).map(drop);
        if let (Some(w), Err(_)) = (&self.watch, &result) {
            w.forget(&m.uuid, to);
        }
        result
    }
}

const INACTIVE: &[&str] = &["poweroff", "saved", "aborted", "aborted-saved", "teleported"];

impl Driver for VboxDriver {
    /// `list vms`, then `showvminfo` per machine (inaccessible machines are skipped).
    fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        let out = self.runner.check(&["list", "vms"])?;
        let vms = parse::list_vms(&out.stdout)
            .map_err(|e| Error::internal(format!("VBoxManage printed unparseable output for list vms: {}", e.0)))?;
        let mut list = Vec::new();
        for (i, (name, uuid)) in vms.iter().enumerate() {
            if name == "<inaccessible>" {
                continue;
            }
            match Machine::info_only(&self.runner, uuid) {
                Ok(m) => list.push(m.domain_info(i32::try_from(i + 1).unwrap_or(i32::MAX))),
                // Unregistered between the two calls: no longer a domain.
                Err(e) if e.code == codes::NO_DOMAIN => {}
                Err(e) => return Err(e),
            }
        }
        Ok(list)
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        let m = Machine::info_only(&self.runner, name)?;
        if m.name != name {
            // VBoxManage resolves UUID-shaped arguments as UUIDs; a name lookup must match the name.
            return Err(Error::no_domain(name));
        }
        Ok(m.domain_info(self.id_of(&m)?))
    }

    fn domain_lookup_by_uuid(&self, uuid: &str) -> Result<DomainInfo> {
        let u = parse::parse_uuid(uuid)
            .ok_or_else(|| Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{uuid}'")))?;
        let m = Machine::info_only(&self.runner, &u)?;
        Ok(m.domain_info(self.id_of(&m)?))
    }

    /// `showvminfo`, then `startvm <uuid> --type headless`.
    fn domain_start(&self, dom: &str) -> Result<()> {
        self.lifecycle(dom, INACTIVE, "domain is already running", st::RUNNING, &["startvm", "--type", "headless"])
    }

    /// `showvminfo`, then `controlvm <uuid> acpipowerbutton`.
    fn domain_shutdown(&self, dom: &str) -> Result<()> {
        self.lifecycle(
            dom,
            &["running", "paused"],
            "domain is not running",
            st::SHUTOFF,
            &["controlvm", "acpipowerbutton"],
        )
    }

    /// `showvminfo`, then `controlvm <uuid> poweroff`.
    fn domain_destroy(&self, dom: &str) -> Result<()> {
        self.lifecycle(
            dom,
            &["running", "paused", "gurumeditation"],
            "domain is not running",
            st::SHUTOFF,
            &["controlvm", "poweroff"],
        )
    }

    /// `showvminfo`, then `controlvm <uuid> pause`.
    fn domain_suspend(&self, dom: &str) -> Result<()> {
        self.lifecycle(dom, &["running"], "domain is not running", st::PAUSED, &["controlvm", "pause"])
    }

    /// `showvminfo`, then `controlvm <uuid> resume`.
    fn domain_resume(&self, dom: &str) -> Result<()> {
        self.lifecycle(dom, &["paused"], "domain is not paused", st::RUNNING, &["controlvm", "resume"])
    }

    /// `showvminfo`: a minimal `<domain type='vbox'>` (name, uuid, memory, vcpu).
    fn domain_xml(&self, dom: &str, _flags: u32) -> Result<String> {
        let m = Machine::info_only(&self.runner, dom)?;
        let d = m.domain_info(-1);
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        Ok(format!(
            "<domain type='vbox'>\n  <name>{}</name>\n  <uuid>{}</uuid>\n  <memory unit='KiB'>{}</memory>\n  <currentMemory unit='KiB'>{}</currentMemory>\n  <vcpu placement='static'>{}</vcpu>\n</domain>\n",
            esc(&d.name),
            d.uuid,
            d.max_memory_kib,
            d.memory_kib,
            d.vcpus
        ))
    }

    /// Invocations: (1) `showvminfo` (UUID, existing names), (2) `snapshot <vm-uuid> take <name>
    /// [--description=…]`. NO_METADATA and VALIDATE are no-ops (VirtualBox keeps its own
    /// metadata; the XML is validated by parsing). Never retried.
    fn snapshot_create(&self, dom: &str, xml_text: &str, _flags: u32) -> Result<String> {
        let mut def = xml::parse(xml_text, xml::ParseFlags::default())?;
        let external =
            def.memory.as_ref().is_some_and(|m| matches!(m.mode, SnapshotMode::External | SnapshotMode::Manual));
        if external || !def.disks.is_empty() {
            return Err(Error::new(
                codes::CONFIG_UNSUPPORTED,
                "VirtualBox takes full-machine snapshots only: <disks> and external memory are not supported",
            ));
        }
        if def.name.is_empty() {
            def.fill_defaults(virtplug_plugin_sdk::now());
        }
        if parse::parse_uuid(&def.name).is_some() {
            return Err(Error::new(
                codes::XML_DETAIL,
                format!("invalid snapshot name '{}': VirtualBox cannot name a snapshot like a UUID", def.name),
            ));
        }
        let m = Machine::load(&self.runner, dom)?;
        if m.snaps.iter().any(|s| s.name == def.name) {
            return Err(Error::operation_invalid(format!("Snapshot '{}' already exists", def.name)));
        }
        let desc_arg = def.description.as_deref().filter(|d| !d.is_empty()).map(|d| format!("--description={d}"));
        let mut argv = vec!["snapshot", m.uuid.as_str(), "take", def.name.as_str()];
        if let Some(d) = &desc_arg {
            argv.push(d);
        }
        let out = self.runner.check(&argv)?;
        if parse::taken_uuid(&out.stdout).is_none() {
            return Err(Error::internal(format!(
                "VBoxManage printed unparseable output for snapshot take (the snapshot '{}' may have been taken): {:?}",
                def.name,
                out.stdout.lines().next().unwrap_or("")
            )));
        }
        Ok(def.name)
    }

    /// Invocations: (1) `showvminfo` (+ the `.vbox` file).
    fn snapshot_xml(&self, dom: &str, snap: &str, _flags: u32) -> Result<String> {
        let m = Machine::load(&self.runner, dom)?;
        Ok(m.snapshot_xml(m.resolve(snap)?))
    }

    /// Invocations: (1) `showvminfo` (+ the `.vbox` file). Every snapshot; the host filters. LIST_METADATA
    /// therefore selects nothing and LIST_NO_METADATA everything.
    fn snapshot_list(&self, dom: &str, _flags: u32) -> Result<Vec<SnapshotInfo>> {
        let m = Machine::load(&self.runner, dom)?;
        Ok((0..m.snaps.len()).map(|i| m.snapshot_info(i)).collect())
    }

    /// Invocations: (1) `showvminfo` (+ the `.vbox` file).
    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        let m = Machine::load(&self.runner, dom)?;
        Ok(m.snapshot_info(m.resolve(snap)?))
    }

    /// Invocations: (1) `showvminfo` (+ the `.vbox` file).
    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        let m = Machine::load(&self.runner, dom)?;
        Ok(m.current.map(|i| m.snapshot_info(i)))
    }

    /// Invocations: (1) `showvminfo`, (2) `snapshot <vm-uuid> restore <snap-uuid>`. VirtualBox refuses while the
    /// machine is running (`Cannot delete the current state of the running machine …`,
    /// VBOX_E_INVALID_VM_STATE → OPERATION_INVALID with that text).
    fn snapshot_revert(&self, dom: &str, snap: &str, _flags: u32) -> Result<()> {
        let m = Machine::load(&self.runner, dom)?;
        let i = m.resolve(snap)?;
        self.runner.check(&["snapshot", &m.uuid, "restore", &m.snaps[i].uuid]).map(drop)
    }

    /// Invocations: (1) `showvminfo`, (2) `snapshot <vm-uuid> delete <snap-uuid>`; VirtualBox's refusals (two
    /// children; current with one child) come back as OPERATION_INVALID with its sentence.
    /// METADATA_ONLY: only invocation 1 (the snapshot must exist); VirtualBox keeps no libvirt
    /// metadata, so there is nothing to delete (as libvirt's esx driver). CHILDREN: 1 + one
    /// `delete` per snapshot of the subtree, leaves first, so each deleted snapshot is a leaf.
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        let m = Machine::load(&self.runner, dom)?;
        let i = m.resolve(snap)?;
        if flags & snapshot_delete::METADATA_ONLY != 0 {
            return Ok(());
        }
        let order = if flags & snapshot_delete::CHILDREN != 0 { m.leaves_first(i) } else { vec![i] };
        for (done, &k) in order.iter().enumerate() {
            if let Err(e) = self.runner.check(&["snapshot", &m.uuid, "delete", &m.snaps[k].uuid]) {
                if done == 0 {
                    return Err(e);
                }
                return Err(Error::new(
                    e.code,
                    format!("{} (after deleting {done} of the {} snapshots of the subtree)", e.message, order.len()),
                ));
            }
        }
        Ok(())
    }
}
