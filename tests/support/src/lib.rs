//! Shared test support for the workspace's integration tests (issue 13, point 4): one place for
//! finding built artifacts in target/<profile>, the CI-must-not-skip policy, private plugin
//! folders, a `virtplugd` spawner with a client for its requests and event stream, and libvirt's
//! own daemon as a reference server.
//!
//! It depends on std only, so any crate's tests can use it, host/core's included. It panics on
//! purpose: a test helper that cannot do its job fails the test that called it.

mod artifacts;
mod daemon;
mod etcd;
mod events;
mod libvirtd;
mod plugins;
mod skip;

pub use artifacts::{
    Artifact, MOCK, QEMU, VIRTPLUG, VIRTPLUGD, VIRTUALBOX, VSPHERE, fixture, plugin, target_dir, target_root,
};
pub use daemon::Daemon;
pub use etcd::EtcdCluster;
pub use events::{EventStream, request};
pub use libvirtd::{Libvirtd, find_program};
pub use plugins::private_plugin_dir;
pub use skip::{in_ci, missing, need};
