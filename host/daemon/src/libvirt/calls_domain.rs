//! Calls on an open connection: connection queries, domains and event callbacks; snapshot
//! calls go on to `calls_snapshot`, and a procedure nobody serves gets libvirtd's exact
//! "unknown procedure" reply, which clients turn into `VIR_ERR_NO_SUPPORT`.

use std::sync::Arc;

use virtplug_host::{DomainInfo, HostError, codes, flags::domain_state};
use virtplug_libvirt_rpc::{
    packet,
    proto::*,
    xdr::{Reader, Xdr},
};

use super::{
    lifecycle::{self, LifecycleEvent},
    session::{ERR_RPC, Fail, Opened, Reply, Session, domain_handle, fail, from, ok, uuid_text},
};

/// `virConnectListAllDomainsFlags` this server filters on (libvirt-domain.h); any other bit is
/// refused as `virCheckFlags` does.
mod list_flags {
    pub const ACTIVE: u32 = 1;
    pub const INACTIVE: u32 = 2;
    pub const PERSISTENT: u32 = 4;
    pub const TRANSIENT: u32 = 8;
    pub const RUNNING: u32 = 16;
    pub const PAUSED: u32 = 32;
    pub const SHUTOFF: u32 = 64;
    pub const OTHER: u32 = 128;
    pub const MANAGEDSAVE: u32 = 256;
    pub const NO_MANAGEDSAVE: u32 = 512;
    pub const AUTOSTART: u32 = 1024;
    pub const NO_AUTOSTART: u32 = 2048;
    pub const HAS_SNAPSHOT: u32 = 4096;
    pub const NO_SNAPSHOT: u32 = 8192;
    pub const HAS_CHECKPOINT: u32 = 16384;
    pub const NO_CHECKPOINT: u32 = 32768;
    pub const ALL: u32 = 0xffff;
}

/// The libvirt version this server speaks (9.0.0), for CONNECT_GET_LIB_VERSION.
const LIBVIRT_VERSION: u64 = 9_000_000;

fn active(d: &DomainInfo) -> bool {
    d.id >= 0
}

/// Answers `p` on the open connection `o`.
pub async fn call(s: &Arc<Session>, o: &Opened, p: i32, payload: &[u8]) -> Reply {
    match p {
        REMOTE_PROC_CONNECT_GET_URI => ok(&RemoteConnectGetUriRet { uri: o.uri.clone() }),
        REMOTE_PROC_CONNECT_GET_TYPE => {
            ok(&RemoteConnectGetTypeRet { type_: o.conn.plugin_info().name.to_uppercase() })
        }
        REMOTE_PROC_CONNECT_GET_VERSION => {
            ok(&RemoteConnectGetVersionRet { hv_ver: version(env!("CARGO_PKG_VERSION")) })
        }
        REMOTE_PROC_CONNECT_GET_LIB_VERSION => ok(&RemoteConnectGetLibVersionRet { lib_ver: LIBVIRT_VERSION }),
        REMOTE_PROC_CONNECT_GET_HOSTNAME => ok(&RemoteConnectGetHostnameRet { hostname: hostname() }),
        REMOTE_PROC_CONNECT_IS_SECURE => ok(&RemoteConnectIsSecureRet { secure: 1 }),
        REMOTE_PROC_CONNECT_REGISTER_CLOSE_CALLBACK | REMOTE_PROC_CONNECT_UNREGISTER_CLOSE_CALLBACK => ok(&()),
        REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY => lifecycle::register(s, payload),
        REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY => lifecycle::deregister(s, payload),
        REMOTE_PROC_CONNECT_DOMAIN_EVENT_REGISTER_ANY => lifecycle::register_legacy(s, payload),
        REMOTE_PROC_CONNECT_DOMAIN_EVENT_DEREGISTER_ANY => lifecycle::deregister_legacy(s, payload),
        REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS => list_all(s, payload).await,
        REMOTE_PROC_CONNECT_NUM_OF_DOMAINS => {
            let n = s.run(|c| c.domain_list()).await?.iter().filter(|d| active(d)).count();
            ok(&RemoteConnectNumOfDomainsRet { num: n as i32 })
        }
        REMOTE_PROC_CONNECT_NUM_OF_DEFINED_DOMAINS => {
            let n = s.run(|c| c.domain_list()).await?.iter().filter(|d| !active(d)).count();
            ok(&RemoteConnectNumOfDefinedDomainsRet { num: n as i32 })
        }
        REMOTE_PROC_CONNECT_LIST_DOMAINS => {
            let a: RemoteConnectListDomainsArgs = packet::args(payload)?;
            let max = list_max(a.maxids, "maxids")?;
            let ids = s.run(|c| c.domain_list()).await?.iter().filter(|d| active(d)).map(|d| d.id).take(max).collect();
            ok(&RemoteConnectListDomainsRet { ids })
        }
        REMOTE_PROC_CONNECT_LIST_DEFINED_DOMAINS => {
            let a: RemoteConnectListDefinedDomainsArgs = packet::args(payload)?;
            let max = list_max(a.maxnames, "maxnames")?;
            let list = s.run(|c| c.domain_list()).await?;
            let names = list.into_iter().filter(|d| !active(d)).map(|d| d.name).take(max).collect();
            ok(&RemoteConnectListDefinedDomainsRet { names })
        }
        REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME => {
            let a: RemoteDomainLookupByNameArgs = packet::args(payload)?;
            let d = s.run(move |c| c.domain_lookup_by_name(&a.name)).await?;
            ok(&RemoteDomainLookupByNameRet { dom: domain_handle(&d) })
        }
        REMOTE_PROC_DOMAIN_LOOKUP_BY_UUID => {
            let a: RemoteDomainLookupByUuidArgs = packet::args(payload)?;
            let d = s.run(move |c| c.domain_lookup(&uuid_text(&a.uuid))).await?;
            ok(&RemoteDomainLookupByUuidRet { dom: domain_handle(&d) })
        }
        REMOTE_PROC_DOMAIN_LOOKUP_BY_ID => {
            let a: RemoteDomainLookupByIdArgs = packet::args(payload)?;
            let list = s.run(|c| c.domain_list()).await?;
            let d = list
                .iter()
                .find(|d| a.id >= 0 && d.id == a.id)
                .ok_or_else(|| fail(codes::NO_DOMAIN, o.from, &format!("no domain with matching id {}", a.id)))?;
            ok(&RemoteDomainLookupByIdRet { dom: domain_handle(d) })
        }
        REMOTE_PROC_DOMAIN_DEFINE_XML | REMOTE_PROC_DOMAIN_DEFINE_XML_FLAGS => {
            let (xml, flags) = if p == REMOTE_PROC_DOMAIN_DEFINE_XML {
                (packet::args::<RemoteDomainDefineXmlArgs>(payload)?.xml, 0)
            } else {
                let a: RemoteDomainDefineXmlFlagsArgs = packet::args(payload)?;
                (a.xml, a.flags)
            };
            no_flags(flags, "domain_define", o)?;
            let (d, what) = s.run(move |c| define(c, &xml)).await?;
            let h = domain_handle(&d);
            s.state.events.emit("domain.defined", &o.uri, Some(&d.name), None, None);
            lifecycle::publish(&s.state, &o.uri, h.clone(), what, d.state);
            ok(&RemoteDomainDefineXmlRet { dom: h })
        }
        REMOTE_PROC_DOMAIN_UNDEFINE | REMOTE_PROC_DOMAIN_UNDEFINE_FLAGS => {
            let (dom, flags) = if p == REMOTE_PROC_DOMAIN_UNDEFINE {
                (packet::args::<RemoteDomainUndefineArgs>(payload)?.dom, 0)
            } else {
                let a: RemoteDomainUndefineFlagsArgs = packet::args(payload)?;
                (a.dom, a.flags)
            };
            let name = dom.name.clone();
            s.run(move |c| c.domain_undefine(&name, flags)).await?;
            s.state.events.emit("domain.undefined", &o.uri, Some(&dom.name), None, None);
            lifecycle::publish(&s.state, &o.uri, dom, LifecycleEvent::Undefined, 0);
            ok(&())
        }
        REMOTE_PROC_DOMAIN_CREATE | REMOTE_PROC_DOMAIN_CREATE_WITH_FLAGS => {
            let (dom, flags) = if p == REMOTE_PROC_DOMAIN_CREATE {
                (packet::args::<RemoteDomainCreateArgs>(payload)?.dom, 0)
            } else {
                let a: RemoteDomainCreateWithFlagsArgs = packet::args(payload)?;
                (a.dom, a.flags)
            };
            no_flags(flags, "domain_start", o)?;
            let h = change(s, o, dom, LifecycleEvent::Started, "domain.started", |c, n| c.domain_start(n)).await?;
            if p == REMOTE_PROC_DOMAIN_CREATE { ok(&()) } else { ok(&RemoteDomainCreateWithFlagsRet { dom: h }) }
        }
        REMOTE_PROC_DOMAIN_SHUTDOWN | REMOTE_PROC_DOMAIN_SHUTDOWN_FLAGS => {
            let (dom, flags) = dom_and_flags(p == REMOTE_PROC_DOMAIN_SHUTDOWN_FLAGS, payload)?;
            no_flags(flags, "domain_shutdown", o)?;
            change(s, o, dom, LifecycleEvent::Shutdown, "domain.stopped", |c, n| c.domain_shutdown(n)).await?;
            ok(&())
        }
        REMOTE_PROC_DOMAIN_DESTROY | REMOTE_PROC_DOMAIN_DESTROY_FLAGS => {
            let (dom, flags) = dom_and_flags(p == REMOTE_PROC_DOMAIN_DESTROY_FLAGS, payload)?;
            no_flags(flags, "domain_destroy", o)?;
            change(s, o, dom, LifecycleEvent::Destroyed, "domain.stopped", |c, n| c.domain_destroy(n)).await?;
            ok(&())
        }
        REMOTE_PROC_DOMAIN_SUSPEND => {
            let a: RemoteDomainSuspendArgs = packet::args(payload)?;
            change(s, o, a.dom, LifecycleEvent::Suspended, "domain.suspended", |c, n| c.domain_suspend(n)).await?;
            ok(&())
        }
        REMOTE_PROC_DOMAIN_RESUME => {
            let a: RemoteDomainResumeArgs = packet::args(payload)?;
            change(s, o, a.dom, LifecycleEvent::Resumed, "domain.resumed", |c, n| c.domain_resume(n)).await?;
            ok(&())
        }
        REMOTE_PROC_DOMAIN_GET_INFO => {
            let d = lookup(s, packet::args::<RemoteDomainGetInfoArgs>(payload)?.dom).await?;
            ok(&RemoteDomainGetInfoRet {
                state: d.state as u8,
                max_mem: d.max_memory_kib,
                memory: d.memory_kib,
                nr_virt_cpu: d.vcpus as u16,
                // The plugin ABI reports no CPU time.
                cpu_time: 0,
            })
        }
        REMOTE_PROC_DOMAIN_GET_STATE => {
            let a: RemoteDomainGetStateArgs = packet::args(payload)?;
            no_flags(a.flags, "domain_get_state", o)?;
            let d = lookup(s, a.dom).await?;
            ok(&RemoteDomainGetStateRet { state: d.state as i32, reason: d.reason as i32 })
        }
        REMOTE_PROC_DOMAIN_GET_MAX_MEMORY => {
            let d = lookup(s, packet::args::<RemoteDomainGetMaxMemoryArgs>(payload)?.dom).await?;
            ok(&RemoteDomainGetMaxMemoryRet { memory: d.max_memory_kib })
        }
        REMOTE_PROC_DOMAIN_IS_ACTIVE => {
            let d = lookup(s, packet::args::<RemoteDomainIsActiveArgs>(payload)?.dom).await?;
            ok(&RemoteDomainIsActiveRet { active: i32::from(active(&d)) })
        }
        REMOTE_PROC_DOMAIN_IS_PERSISTENT => {
            let d = lookup(s, packet::args::<RemoteDomainIsPersistentArgs>(payload)?.dom).await?;
            ok(&RemoteDomainIsPersistentRet { persistent: i32::from(d.persistent) })
        }
        REMOTE_PROC_DOMAIN_IS_UPDATED => {
            lookup(s, packet::args::<RemoteDomainIsUpdatedArgs>(payload)?.dom).await?;
            ok(&RemoteDomainIsUpdatedRet { updated: 0 })
        }
        REMOTE_PROC_DOMAIN_GET_XML_DESC => {
            let a: RemoteDomainGetXmlDescArgs = packet::args(payload)?;
            let xml = s.run(move |c| c.domain_xml(&a.dom.name, a.flags)).await?;
            ok(&RemoteDomainGetXmlDescRet { xml })
        }
        REMOTE_PROC_DOMAIN_GET_OS_TYPE => {
            let a: RemoteDomainGetOsTypeArgs = packet::args(payload)?;
            let xml = s.run(move |c| c.domain_xml(&a.dom.name, 0)).await?;
            ok(&RemoteDomainGetOsTypeRet { type_: virtplug_host::model::domain::os_type(&xml) })
        }
        REMOTE_PROC_DOMAIN_GET_AUTOSTART => {
            lookup(s, packet::args::<RemoteDomainGetAutostartArgs>(payload)?.dom).await?;
            ok(&RemoteDomainGetAutostartRet { autostart: 0 })
        }
        REMOTE_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE => {
            let a: RemoteDomainHasManagedSaveImageArgs = packet::args(payload)?;
            no_flags(a.flags, "domain_has_managed_save_image", o)?;
            lookup(s, a.dom).await?;
            ok(&RemoteDomainHasManagedSaveImageRet { result: 0 })
        }
        // No security driver: an empty model, which clients read as "none".
        REMOTE_PROC_NODE_GET_SECURITY_MODEL => ok(&RemoteNodeGetSecurityModelRet::default()),
        REMOTE_PROC_DOMAIN_GET_SECURITY_LABEL => {
            lookup(s, packet::args::<RemoteDomainGetSecurityLabelArgs>(payload)?.dom).await?;
            ok(&RemoteDomainGetSecurityLabelRet::default())
        }
        REMOTE_PROC_DOMAIN_GET_MESSAGES => {
            let a: RemoteDomainGetMessagesArgs = packet::args(payload)?;
            lookup(s, a.dom).await?;
            ok(&RemoteDomainGetMessagesRet::default())
        }
        _ => super::calls_snapshot::call(s, o, p, payload).await.unwrap_or_else(|| {
            Err(Fail::from_error(packet::error(ERR_RPC, from::RPC, format!("unknown procedure: {p}"))))
        }),
    }
}

/// Defines a domain; the event is UPDATED when a domain of that name existed (libvirt's
/// DEFINED/UPDATED), ADDED otherwise.
pub fn define(c: &virtplug_host::Connection, xml: &str) -> Result<(DomainInfo, LifecycleEvent), HostError> {
    use virtplug_host::model::domain::{DomainDef, with_uuid};
    let existed = DomainDef::parse(&with_uuid(xml)).is_ok_and(|def| c.domain_lookup(&def.name).is_ok());
    let d = c.domain_define(xml)?;
    Ok((d, if existed { LifecycleEvent::Updated } else { LifecycleEvent::Defined }))
}

/// `{ dom }` or `{ dom, flags }` arguments.
fn dom_and_flags(with_flags: bool, payload: &[u8]) -> Result<(RemoteNonnullDomain, u32), Fail> {
    let mut r = Reader::new(payload);
    let dom = RemoteNonnullDomain::decode(&mut r)?;
    let flags = if with_flags { u32::decode(&mut r)? } else { 0 };
    r.finish()?;
    Ok((dom, flags))
}

/// Refuses flags on calls that define none, as libvirt's `virCheckFlags(0, …)`.
pub fn no_flags(flags: u32, operation: &'static str, o: &Opened) -> Result<(), Fail> {
    if flags == 0 {
        return Ok(());
    }
    Err(super::session::host_error(&HostError::UnsupportedFlags { flags, operation }, o.from))
}

/// The domain a handle names, by name (a handle's UUID and id are the client's copy).
async fn lookup(s: &Session, dom: RemoteNonnullDomain) -> Result<DomainInfo, Fail> {
    s.run(move |c| c.domain_lookup(&dom.name)).await
}

/// Runs a lifecycle change, then publishes it (SSE and libvirt callbacks) with the domain's new
/// handle, which it returns.
async fn change(
    s: &Arc<Session>,
    o: &Opened,
    dom: RemoteNonnullDomain,
    what: LifecycleEvent,
    kind: &str,
    f: impl FnOnce(&virtplug_host::Connection, &str) -> Result<(), HostError> + Send + 'static,
) -> Result<RemoteNonnullDomain, Fail> {
    let name = dom.name.clone();
    // A transient domain that stopped is gone: the change still happened (libvirt answers it
    // as done), and its event names the domain as the client did, shut off, with no id.
    let after = s
        .run(move |c| {
            f(c, &name)?;
            crate::state::lookup_after_change(c, &name)
        })
        .await?;
    let (h, state) = match &after {
        Some(d) => (domain_handle(d), d.state),
        None => (RemoteNonnullDomain { id: -1, ..dom }, domain_state::SHUTOFF),
    };
    s.state.events.emit(kind, &o.uri, Some(&h.name), None, None);
    lifecycle::publish(&s.state, &o.uri, h.clone(), what, state);
    Ok(h)
}

async fn list_all(s: &Session, payload: &[u8]) -> Reply {
    use list_flags::*;
    let a: RemoteConnectListAllDomainsArgs = packet::args(payload)?;
    let o = s.opened()?;
    if a.flags & !ALL != 0 {
        return Err(super::session::host_error(
            &HostError::UnsupportedFlags { flags: a.flags & !ALL, operation: "domain_list" },
            o.from,
        ));
    }
    let f = a.flags;
    let want_snapshots = f & (HAS_SNAPSHOT | NO_SNAPSHOT) != 0;
    let listed = s
        .run(move |c| {
            let list = c.domain_list()?;
            list.into_iter()
                .map(|d| {
                    let n = if want_snapshots { c.snapshot_list(&d.name, 0)?.len() } else { 0 };
                    Ok((d, n))
                })
                .collect::<Result<Vec<_>, HostError>>()
        })
        .await?;
    // Each group of flags filters only when some but not all of its members are given.
    let group = |bits: u32, yes: u32, no: u32, is: bool| {
        bits & (yes | no) == 0 || (is && bits & yes != 0) || (!is && bits & no != 0)
    };
    let domains: Vec<RemoteNonnullDomain> = listed
        .iter()
        .filter(|(d, n)| {
            let state_bits = RUNNING | PAUSED | SHUTOFF | OTHER;
            let state_ok = f & state_bits == 0
                || match d.state {
                    domain_state::RUNNING => f & RUNNING != 0,
                    domain_state::PAUSED => f & PAUSED != 0,
                    domain_state::SHUTOFF => f & SHUTOFF != 0,
                    _ => f & OTHER != 0,
                };
            group(f, ACTIVE, INACTIVE, active(d))
                && group(f, PERSISTENT, TRANSIENT, d.persistent)
                && state_ok
                && group(f, MANAGEDSAVE, NO_MANAGEDSAVE, false)
                && group(f, AUTOSTART, NO_AUTOSTART, false)
                && group(f, HAS_SNAPSHOT, NO_SNAPSHOT, *n > 0)
                && group(f, HAS_CHECKPOINT, NO_CHECKPOINT, false)
        })
        .map(|(d, _)| domain_handle(d))
        .collect();
    let ret = domains.len() as u32;
    let domains = if a.need_results != 0 { domains } else { Vec::new() };
    ok(&RemoteConnectListAllDomainsRet { domains, ret })
}

/// A client's `maxids`/`maxnames`, bounded as libvirtd bounds it.
pub fn list_max(n: i32, what: &str) -> Result<usize, Fail> {
    if n < 0 || n as u32 > REMOTE_DOMAIN_LIST_MAX {
        return Err(Fail::from_error(packet::error(ERR_RPC, from::RPC, format!("{what} > REMOTE_DOMAIN_LIST_MAX"))));
    }
    Ok(n as usize)
}

/// `major.minor.micro` → libvirt's `major * 1,000,000 + minor * 1,000 + micro`.
fn version(v: &str) -> u64 {
    v.split('.').take(3).fold(0, |acc, p| acc * 1000 + p.parse::<u64>().unwrap_or(0))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version("0.1.0"), 1000);
        assert_eq!(version("9.0.0"), 9_000_000);
    }
}
