//! Every snapshot procedure of libvirt's remote program, each one host call (and its checks).
//! A snapshot handle is its name plus the domain handle the client sent, echoed back.

use std::sync::Arc;

use virtplug_host::{SnapshotInfo, codes, flags::snapshot_create, flags::snapshot_delete};
use virtplug_libvirt_rpc::{packet, proto::*};

use super::{
    calls_domain::no_flags,
    lifecycle::{self, LifecycleEvent},
    session::{ERR_RPC, Fail, Opened, Reply, Session, domain_handle, fail, from, ok},
};

fn handle(name: String, dom: &RemoteNonnullDomain) -> RemoteNonnullDomainSnapshot {
    RemoteNonnullDomainSnapshot { name, dom: dom.clone() }
}

/// A client's `maxnames`, bounded as libvirtd bounds it.
fn names_max(n: i32) -> Result<usize, Fail> {
    if n < 0 || n as u32 > REMOTE_DOMAIN_SNAPSHOT_LIST_MAX {
        return Err(Fail::from_error(packet::error(ERR_RPC, from::RPC, "maxnames > REMOTE_DOMAIN_SNAPSHOT_LIST_MAX")));
    }
    Ok(n as usize)
}

/// A list as the reply may carry it (libvirtd refuses longer ones rather than truncate).
fn listed(list: Vec<SnapshotInfo>) -> Result<Vec<SnapshotInfo>, Fail> {
    if list.len() > REMOTE_DOMAIN_SNAPSHOT_LIST_MAX as usize {
        let text = format!("Too many domain snapshots '{}' for limit '{REMOTE_DOMAIN_SNAPSHOT_LIST_MAX}'", list.len());
        return Err(Fail::from_error(packet::error(ERR_RPC, from::RPC, text)));
    }
    Ok(list)
}

/// Answers `p` if it is a snapshot procedure; `None` otherwise.
pub async fn call(s: &Arc<Session>, o: &Opened, p: i32, payload: &[u8]) -> Option<Reply> {
    Some(match p {
        REMOTE_PROC_DOMAIN_SNAPSHOT_CREATE_XML => create(s, o, payload).await,
        REMOTE_PROC_DOMAIN_SNAPSHOT_GET_XML_DESC => {
            async {
                let a: RemoteDomainSnapshotGetXmlDescArgs = packet::args(payload)?;
                let xml = s.run_snapshot(move |c| c.snapshot_xml(&a.snap.dom.name, &a.snap.name, a.flags)).await?;
                ok(&RemoteDomainSnapshotGetXmlDescRet { xml })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_NUM => {
            async {
                let a: RemoteDomainSnapshotNumArgs = packet::args(payload)?;
                let n = s.run_snapshot(move |c| c.snapshot_list(&a.dom.name, a.flags)).await?.len();
                ok(&RemoteDomainSnapshotNumRet { num: n as i32 })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_LIST_NAMES => {
            async {
                let a: RemoteDomainSnapshotListNamesArgs = packet::args(payload)?;
                let max = names_max(a.maxnames)?;
                let list = s.run_snapshot(move |c| c.snapshot_list(&a.dom.name, a.flags)).await?;
                ok(&RemoteDomainSnapshotListNamesRet { names: list.into_iter().take(max).map(|i| i.name).collect() })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_LIST_ALL_SNAPSHOTS => {
            async {
                let a: RemoteDomainListAllSnapshotsArgs = packet::args(payload)?;
                let name = a.dom.name.clone();
                let list = listed(s.run_snapshot(move |c| c.snapshot_list(&name, a.flags)).await?)?;
                let ret = list.len() as i32;
                let snapshots = if a.need_results != 0 {
                    list.into_iter().map(|i| handle(i.name, &a.dom)).collect()
                } else {
                    Vec::new()
                };
                ok(&RemoteDomainListAllSnapshotsRet { snapshots, ret })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN => {
            async {
                let a: RemoteDomainSnapshotListAllChildrenArgs = packet::args(payload)?;
                let snap = a.snapshot.clone();
                let list =
                    s.run_snapshot(move |c| c.snapshot_list_children(&snap.dom.name, &snap.name, a.flags)).await?;
                let list = listed(list)?;
                let ret = list.len() as i32;
                let snapshots = if a.need_results != 0 {
                    list.into_iter().map(|i| handle(i.name, &a.snapshot.dom)).collect()
                } else {
                    Vec::new()
                };
                ok(&RemoteDomainSnapshotListAllChildrenRet { snapshots, ret })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_NUM_CHILDREN => {
            async {
                let a: RemoteDomainSnapshotNumChildrenArgs = packet::args(payload)?;
                let n = s
                    .run_snapshot(move |c| c.snapshot_list_children(&a.snap.dom.name, &a.snap.name, a.flags))
                    .await?
                    .len();
                ok(&RemoteDomainSnapshotNumChildrenRet { num: n as i32 })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES => {
            async {
                let a: RemoteDomainSnapshotListChildrenNamesArgs = packet::args(payload)?;
                let max = names_max(a.maxnames)?;
                let list =
                    s.run_snapshot(move |c| c.snapshot_list_children(&a.snap.dom.name, &a.snap.name, a.flags)).await?;
                ok(&RemoteDomainSnapshotListChildrenNamesRet {
                    names: list.into_iter().take(max).map(|i| i.name).collect(),
                })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_LOOKUP_BY_NAME => {
            async {
                let a: RemoteDomainSnapshotLookupByNameArgs = packet::args(payload)?;
                no_flags(a.flags, "snapshot_lookup", o)?;
                let (dom, name) = (a.dom.name.clone(), a.name);
                let info = s.run_snapshot(move |c| c.snapshot_lookup(&dom, &name)).await?;
                ok(&RemoteDomainSnapshotLookupByNameRet { snap: handle(info.name, &a.dom) })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_HAS_CURRENT_SNAPSHOT => {
            async {
                let a: RemoteDomainHasCurrentSnapshotArgs = packet::args(payload)?;
                no_flags(a.flags, "snapshot_current", o)?;
                let cur = s.run_snapshot(move |c| c.snapshot_current(&a.dom.name)).await?;
                ok(&RemoteDomainHasCurrentSnapshotRet { result: i32::from(cur.is_some()) })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_CURRENT => {
            async {
                let a: RemoteDomainSnapshotCurrentArgs = packet::args(payload)?;
                no_flags(a.flags, "snapshot_current", o)?;
                let name = a.dom.name.clone();
                let cur = s.run_snapshot(move |c| c.snapshot_current(&name)).await?.ok_or_else(|| {
                    fail(codes::NO_DOMAIN_SNAPSHOT, o.from, "the domain does not have a current snapshot")
                })?;
                ok(&RemoteDomainSnapshotCurrentRet { snap: handle(cur.name, &a.dom) })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_GET_PARENT => {
            async {
                let a: RemoteDomainSnapshotGetParentArgs = packet::args(payload)?;
                no_flags(a.flags, "snapshot_parent", o)?;
                let snap = a.snap.clone();
                let parent = s.run_snapshot(move |c| c.snapshot_parent(&snap.dom.name, &snap.name)).await?;
                ok(&RemoteDomainSnapshotGetParentRet { snap: handle(parent, &a.snap.dom) })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_IS_CURRENT => {
            async {
                let a: RemoteDomainSnapshotIsCurrentArgs = packet::args(payload)?;
                no_flags(a.flags, "snapshot_is_current", o)?;
                let info = s.run_snapshot(move |c| c.snapshot_lookup(&a.snap.dom.name, &a.snap.name)).await?;
                ok(&RemoteDomainSnapshotIsCurrentRet { current: i32::from(info.current) })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_SNAPSHOT_HAS_METADATA => {
            async {
                let a: RemoteDomainSnapshotHasMetadataArgs = packet::args(payload)?;
                no_flags(a.flags, "snapshot_has_metadata", o)?;
                let info = s.run_snapshot(move |c| c.snapshot_lookup(&a.snap.dom.name, &a.snap.name)).await?;
                ok(&RemoteDomainSnapshotHasMetadataRet { metadata: i32::from(info.has_metadata) })
            }
            .await
        }
        REMOTE_PROC_DOMAIN_REVERT_TO_SNAPSHOT => revert(s, o, payload).await,
        REMOTE_PROC_DOMAIN_SNAPSHOT_DELETE => {
            async {
                let a: RemoteDomainSnapshotDeleteArgs = packet::args(payload)?;
                let snap = a.snap.clone();
                s.run_snapshot(move |c| c.snapshot_delete(&snap.dom.name, &snap.name, a.flags)).await?;
                let kind = if a.flags & snapshot_delete::METADATA_ONLY != 0 {
                    "snapshot.metadata_dropped"
                } else {
                    "snapshot.deleted"
                };
                s.state.events.emit(kind, &o.uri, Some(&a.snap.dom.name), Some(&a.snap.name), None);
                ok(&())
            }
            .await
        }
        _ => return None,
    })
}

async fn create(s: &Arc<Session>, o: &Opened, payload: &[u8]) -> Reply {
    let a: RemoteDomainSnapshotCreateXmlArgs = packet::args(payload)?;
    let (dom, xml, flags) = (a.dom.name.clone(), a.xml_desc, a.flags);
    let name = s.run_snapshot(move |c| c.snapshot_create(&dom, &xml, flags)).await?;
    let kind = if flags & snapshot_create::REDEFINE != 0 { "snapshot.redefined" } else { "snapshot.created" };
    s.state.events.emit(kind, &o.uri, Some(&a.dom.name), Some(&name), None);
    ok(&RemoteDomainSnapshotCreateXmlRet { snap: handle(name, &a.dom) })
}

/// Reverts, then tells event listeners how the domain's state changed (libvirt's
/// FROM_SNAPSHOT details).
async fn revert(s: &Arc<Session>, o: &Opened, payload: &[u8]) -> Reply {
    let a: RemoteDomainRevertToSnapshotArgs = packet::args(payload)?;
    let snap = a.snap.clone();
    let (before, after) = s
        .run_snapshot(move |c| {
            let before = c.domain_lookup(&snap.dom.name)?;
            c.snapshot_revert(&snap.dom.name, &snap.name, a.flags)?;
            Ok((before, c.domain_lookup(&snap.dom.name)?))
        })
        .await?;
    s.state.events.emit("snapshot.reverted", &o.uri, Some(&a.snap.dom.name), Some(&a.snap.name), None);
    lifecycle::publish(&s.state, &o.uri, domain_handle(&after), LifecycleEvent::RevertedTo(after.state), before.state);
    ok(&())
}
