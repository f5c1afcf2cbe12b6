//! The root module every plugin exports and the host loads.

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr},
};

use crate::{
    driver::DriverBox,
    host::HostServicesBox,
    types::{AbiError, PluginInfo},
};

/// ABI major version: plugins and host must agree.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor version: grows when fields or methods are appended.
pub const ABI_MINOR: u16 = 1;

/// The symbol abi_stable 0.11 exports for a root module (`nm -D` shows it in every plugin).
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// The root module: a prefix type, so fields may be appended after `open` (the last prefix
/// field); a 1.x host reads an appended field through its accessor, which is `None` when the
/// plugin predates it.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginMod_Ref)))]
pub struct PluginMod {
    /// The plugin's self-description; must return the same value on every call.
    pub info: extern "C" fn() -> PluginInfo,
    /// Open a connection for `uri`. `read_only` connections must refuse every change.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(uri: RStr<'_>, read_only: bool) -> RResult<DriverBox, AbiError>,
    /// `open` with the host's services for this connection (log, events, progress). Since 1.1:
    /// the accessor `open_with_host()` returns `None` for a 1.0 plugin, and the host then
    /// calls `open`; a 1.0 host never calls this, so a plugin must work without services.
    pub open_with_host:
        extern "C" fn(uri: RStr<'_>, read_only: bool, host: HostServicesBox) -> RResult<DriverBox, AbiError>,
}

impl RootModule for PluginMod_Ref {
    declare_root_module_statics! {PluginMod_Ref}
    const BASE_NAME: &'static str = "virtplug_plugin";
    const NAME: &'static str = "virtplug_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
