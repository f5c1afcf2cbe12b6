//! Conversions between the native model types and their ABI twins.

use virtplug_model as model;
use virtplug_plugin_api::{
    self as abi,
    abi_stable::std_types::{ROption, RString},
};

pub(crate) fn error(e: model::Error) -> abi::AbiError {
    abi::AbiError::new(e.code, e.message)
}

pub(crate) fn domain(d: model::DomainInfo) -> abi::DomainInfo {
    abi::DomainInfo {
        name: d.name.into(),
        uuid: d.uuid.into(),
        id: d.id,
        state: d.state,
        reason: d.reason,
        max_memory_kib: d.max_memory_kib,
        memory_kib: d.memory_kib,
        vcpus: d.vcpus,
        persistent: d.persistent,
    }
}

pub(crate) fn snapshot(s: model::SnapshotInfo) -> abi::SnapshotInfo {
    abi::SnapshotInfo {
        name: s.name.into(),
        parent: s.parent.map(RString::from).into(),
        creation_time: s.creation_time,
        state: s.state,
        current: s.current,
        has_metadata: s.has_metadata,
        external: s.external,
        disk_only: s.disk_only,
    }
}

pub(crate) fn option_snapshot(s: Option<model::SnapshotInfo>) -> ROption<abi::SnapshotInfo> {
    s.map(snapshot).into()
}
