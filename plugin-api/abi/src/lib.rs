//! virtplug's stable plugin ABI: the only crate that both the host and every plugin link.
//!
//! It owns the root module ([`PluginMod`]), the [`Driver`] trait object, the flag constants
//! (libvirt's names and bit values), the capability masks a plugin declares, and the ABI-stable
//! error ([`AbiError`]), the operation table the generic checks read ([`rules`]), and since 1.1
//! the host services a plugin gets at `open_with_host` ([`HostServices`]). It holds
//! no logic and depends on no other workspace crate.
//!
//! Evolution rules (abi_stable 0.11.3, pinned exactly):
//! - fields of [`PluginMod`] and methods of [`Driver`] are only ever appended, after the
//!   `last_prefix_field`, and an appended method carries a default body returning `NO_SUPPORT`
//!   (`tests/defaults.rs` fails when one has none);
//! - a renamed field is a break; a changed type or signature is a break;
//! - this crate stays at major version 1 for the v1 ABI (the package version is part of every
//!   type layout, so a 2.0 would make every plugin incompatible).
#![allow(non_local_definitions, reason = "emitted by abi_stable's #[sabi_trait] on current rustc")]
#![allow(non_camel_case_types, reason = "abi_stable names generated types Driver_TO, PluginMod_Ref")]

pub mod codes;
pub mod flags;
pub mod rules;

mod driver;
mod host;
mod root;
mod types;

pub use driver::{Driver, Driver_TO, DriverBox};
pub use host::{HostServices, HostServices_TO, HostServicesBox, PluginEvent, log_level};
pub use root::{ABI_MAJOR, ABI_MINOR, PluginMod, PluginMod_Ref, ROOT_MODULE_SYMBOL};
pub use types::{AbiError, Capabilities, DomainInfo, PluginInfo, SnapshotInfo};

/// abi_stable itself, for the SDK's export macro and the host loader. Plugin authors never name it.
pub use abi_stable;
