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
    types::{AbiError, PluginInfo},
};

/// ABI major version: plugins and host must agree.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor version: grows when fields or methods are appended.
pub const ABI_MINOR: u16 = 0;

/// The symbol abi_stable 0.11 exports for a root module (`nm -D` shows it in every plugin).
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// The root module: a prefix type, so fields may be appended after `open`.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginMod_Ref)))]
pub struct PluginMod {
    /// The plugin's self-description; must return the same value on every call.
    pub info: extern "C" fn() -> PluginInfo,
    /// Open a connection for `uri`. `read_only` connections must refuse every change.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(uri: RStr<'_>, read_only: bool) -> RResult<DriverBox, AbiError>,
}

impl RootModule for PluginMod_Ref {
    declare_root_module_statics! {PluginMod_Ref}
    const BASE_NAME: &'static str = "virtplug_plugin";
    const NAME: &'static str = "virtplug_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
