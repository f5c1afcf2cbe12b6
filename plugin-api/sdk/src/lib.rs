//! The plugin author's kit: a native Rust [`Driver`] trait (`Result`, `&str`, `Vec`), a
//! [`Plugin`] description, and [`export_plugin!`], which exports the ABI root module.
//!
//! Every entry point the macro exports runs inside `catch_unwind`: a panic becomes
//! `INTERNAL_ERROR` naming the plugin, and the connection that panicked is poisoned (every later
//! call fails without running plugin code). The plugin's panic hook keeps the panic text off
//! stderr; it is logged there only under `VIRTPLUG_PLUGIN_LOG=stderr` (see `panics.rs`). Flags
//! and operations are checked here too with the host's own rule table and function
//! ([`rules::check`]: read-only refusals, SECURE on read-only, undefined bits, libvirt's flag
//! relationships, the declared masks and operations), so a plugin never sees a call the host
//! would refuse, even when called without the host. [`open_checked`] applies the same checks
//! to a native connection, for a plugin's own tests.
//!
//! [`host`] gives a plugin the host's services (ABI 1.1): logging, events, progress and
//! cancellation; they are no-ops in a 1.0 host, which opens connections without them.
//!
//! This crate must not contain hypervisor logic or generic snapshot semantics (those live in
//! `virtplug-model`), and plugin crates never name `abi_stable` themselves.

#[cfg(panic = "abort")]
compile_error!("virtplug plugins must be built with panic = \"unwind\": the SDK converts panics into errors");

mod checked;
mod clock;
mod convert;
mod driver;
mod guard;
pub mod host;
pub mod metadata;
pub mod metadata_dir;
#[cfg(feature = "sqlite")]
pub mod metadata_sqlite;
mod panics;
pub mod rules;

pub use checked::{open_checked, with_checks};
pub use clock::now;
pub use driver::{Driver, Plugin, PluginDescriptor};
pub use metadata::{Edit, Metadata, MetadataBackend, MetadataStore};
pub use metadata_dir::DirBackend;
#[cfg(feature = "sqlite")]
pub use metadata_sqlite::SqliteMetadata;
pub use virtplug_model::{self as model, DomainInfo, Error, Result, SnapshotInfo, codes, flags};
pub use virtplug_plugin_api::Capabilities;

/// Implementation details of [`export_plugin!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::guard::root_module;
    pub use virtplug_plugin_api::PluginMod_Ref;
    pub use virtplug_plugin_api::abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as a virtplug plugin.
///
/// This writes by hand what abi_stable's `#[export_root_module]` would generate, so that plugin
/// crates depend on the SDK alone. Use it once, in a `cdylib` crate.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = {
            extern "C" fn __virtplug_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader($crate::__private::root_module::<$plugin>)
            }
            // SAFETY: the constructor returns a `PluginMod_Ref` built by `root_module`, which is
            // the module type named here, as `from_constructor` requires.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::__private::PluginMod_Ref>(
                    __virtplug_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
