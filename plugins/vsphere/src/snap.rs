//! Snapshot operations. Each reads the VM's whole tree (`snapshot`: rootSnapshotList and
//! currentSnapshot) in one call, resolves names against it, then runs at most one task and
//! reads that task's outcome in one more call: create, revert and delete cost 3 round trips,
//! listing, lookup, current and XML cost 1.

use virtplug_plugin_sdk::{
    Error, Result, SnapshotInfo, codes,
    flags::{snapshot_create as cf, snapshot_delete as df, snapshot_revert as rf},
    model::xml::{self, ParseFlags, SnapshotMode},
};

use crate::{
    conn::Connection,
    fault::Subject,
    soap::CallError,
    tree::Tree,
    vim::{self, MoRef},
    xmldom::escape,
};

impl Connection {
    /// The VM's moid, BIOS uuid and snapshot tree, in one call.
    pub(crate) fn tree(&self, dom: &str) -> Result<(MoRef, String, Tree)> {
        let (vm, o) = self.read_vm(dom, &["config.uuid", "snapshot"])?;
        let uuid = o.text("config.uuid").map(|u| u.trim().to_lowercase()).unwrap_or(vm.uuid);
        Ok((vm.moref, uuid, Tree::parse(o.prop("snapshot"))))
    }

    /// `snapshot_create`: `CreateSnapshot_Task(name, description, memory = !DISK_ONLY,
    /// quiesce = QUIESCE)`. A name already used anywhere in the tree is refused, like libvirt's
    /// esx driver. NO_METADATA is trivially true (virtplug keeps no metadata for vSphere).
    pub fn snapshot_create(&self, dom: &str, xml_text: &str, flags: u32) -> Result<String> {
        let mut def =
            xml::parse(xml_text, ParseFlags { offline: flags & cf::DISK_ONLY != 0, ..ParseFlags::default() })?;
        if !def.disks.is_empty() {
            return Err(Error::new(codes::CONFIG_UNSUPPORTED, "disk snapshots not supported yet"));
        }
        if def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::External) {
            return Err(Error::new(
                codes::CONFIG_UNSUPPORTED,
                "external memory snapshots are not supported by vSphere",
            ));
        }
        def.fill_defaults(virtplug_plugin_sdk::now());
        let (vm, _, tree) = self.tree(dom)?;
        if tree.has_name(&def.name) {
            return Err(Error::operation_invalid(format!("Snapshot '{}' already exists", def.name)));
        }
        let memory = flags & cf::DISK_ONLY == 0 && def.memory.as_ref().is_none_or(|m| m.mode != SnapshotMode::No);
        let description =
            def.description.as_deref().map(|d| format!("<description>{}</description>", escape(d))).unwrap_or_default();
        let body = format!(
            r#"<CreateSnapshot_Task xmlns="urn:vim25">{}<name>{}</name>{description}<memory>{memory}</memory><quiesce>{}</quiesce></CreateSnapshot_Task>"#,
            vm.xml("_this"),
            escape(&def.name),
            flags & cf::QUIESCE != 0
        );
        vim::run_task(&self.soap, self.pc(), "CreateSnapshot_Task", &body, None)
            .map_err(|e| e.into_error("CreateSnapshot_Task", Subject::Domain(dom)))?;
        Ok(def.name)
    }

    /// `snapshot_list`: the whole tree in pre-order, one call; the host filters.
    pub fn snapshot_list(&self, dom: &str) -> Result<Vec<SnapshotInfo>> {
        Ok(self.tree(dom)?.2.list())
    }

    /// `snapshot_lookup`.
    pub fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        let (_, _, tree) = self.tree(dom)?;
        Ok(tree.info(tree.resolve(snap)?))
    }

    /// `snapshot_current`: `None` when there is none (or when vSphere names one that is no
    /// longer in the tree).
    pub fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        let (_, _, tree) = self.tree(dom)?;
        Ok(tree.current.map(|i| tree.info(i)))
    }

    /// `snapshot_xml`.
    pub fn snapshot_xml(&self, dom: &str, snap: &str) -> Result<String> {
        let (_, uuid, tree) = self.tree(dom)?;
        Ok(tree.xml(tree.resolve(snap)?, &uuid))
    }

    /// `snapshot_revert`: `RevertToSnapshot_Task`; with RUNNING or PAUSED the VM is then
    /// powered on or suspended as needed (the power state is read in the same call that reads
    /// the task's outcome). libvirt's esx driver accepts no revert flags.
    pub fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        let (vm, _, tree) = self.tree(dom)?;
        let node = &tree.nodes[tree.resolve(snap)?];
        let target = MoRef::new("VirtualMachineSnapshot", &node.moid);
        let body = format!(
            r#"<RevertToSnapshot_Task xmlns="urn:vim25">{}<suppressPowerOn>false</suppressPowerOn></RevertToSnapshot_Task>"#,
            target.xml("_this")
        );
        let want_state = flags & (rf::RUNNING | rf::PAUSED) != 0;
        let extra: Option<(&MoRef, &[&str])> = want_state.then_some((&vm, &["runtime.powerState"][..]));
        let done = vim::run_task(&self.soap, self.pc(), "RevertToSnapshot_Task", &body, extra)
            .map_err(|e| e.into_error("RevertToSnapshot_Task", Subject::Snapshot(snap)))?;
        if !want_state {
            return Ok(());
        }
        let power = done.extra.as_ref().and_then(|o| o.text("runtime.powerState")).unwrap_or("").to_owned();
        if flags & rf::RUNNING != 0 && power != "poweredOn" {
            self.power_moref(dom, &vm, "PowerOnVM_Task")?;
        } else if flags & rf::PAUSED != 0 && power != "suspended" {
            if power == "poweredOff" {
                self.power_moref(dom, &vm, "PowerOnVM_Task")?;
            }
            self.power_moref(dom, &vm, "SuspendVM_Task")?;
        }
        Ok(())
    }

    /// `snapshot_delete`: `RemoveSnapshot_Task` (CHILDREN → `removeChildren`); CHILDREN_ONLY
    /// removes each child's subtree (all tasks started, then their outcomes read in one call);
    /// METADATA_ONLY only checks that the snapshot exists: vSphere keeps the metadata itself.
    pub fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        let (_, _, tree) = self.tree(dom)?;
        let idx = tree.resolve(snap)?;
        if flags & df::METADATA_ONLY != 0 {
            return Ok(());
        }
        let remove = |moid: &str, children: bool| -> std::result::Result<MoRef, CallError> {
            let body = format!(
                r#"<RemoveSnapshot_Task xmlns="urn:vim25">{}<removeChildren>{children}</removeChildren></RemoveSnapshot_Task>"#,
                MoRef::new("VirtualMachineSnapshot", moid).xml("_this")
            );
            vim::call_moref(&self.soap, "RemoveSnapshot_Task", &body)?
                .ok_or_else(|| CallError::Error(Error::internal("RemoveSnapshot_Task returned no task")))
        };
        let tasks = if flags & df::CHILDREN_ONLY != 0 {
            let mut tasks = Vec::new();
            for c in &tree.nodes[idx].children {
                tasks.push(
                    remove(&tree.nodes[*c].moid, true)
                        .map_err(|e| e.into_error("RemoveSnapshot_Task", Subject::Snapshot(snap)))?,
                );
            }
            tasks
        } else {
            vec![
                remove(&tree.nodes[idx].moid, flags & df::CHILDREN != 0)
                    .map_err(|e| e.into_error("RemoveSnapshot_Task", Subject::Snapshot(snap)))?,
            ]
        };
        if tasks.is_empty() {
            return Ok(());
        }
        vim::wait_tasks(&self.soap, self.pc(), &tasks, None)
            .map(|_| ())
            .map_err(|e| e.into_error("RemoveSnapshot_Task", Subject::Snapshot(snap)))
    }
}
