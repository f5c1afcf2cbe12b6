//! `virtplug-bench`: measurements that back the issues' performance targets, each printed next
//! to its peer (libvirt) measured in the same run, as a ratio. Never a pass/fail test.
//!
//! Run through `cargo xtask bench` (release build). Sections:
//! - `load`: loading each plugin file, in fresh processes;
//! - `cold-start`: `virtplug snapshot-list` against `virsh -c test:///default snapshot-list`;
//! - `workflow`: the founding workflow through the host library API on the mock, against
//!   libvirt's test driver driven from python3-libvirt;
//! - `vsphere`: snapshot operations on the vSphere simulator, round trips and time, against
//!   libvirt's esx driver from python3-libvirt;
//! - `vbox`: snapshot operations on the VBoxManage simulator, invocations and time;
//! - `qemu`: snapshot create (shut off and running) and revert through the host, against the
//!   bare `qemu-img` and QMP commands;
//! - `fleet`: snapshot metadata on a 3-member etcd cluster beside SQLite (feature `etcd`);
//! - `daemon`: 16 concurrent clients on virtplugd's unix socket, and a 16,000-snapshot
//!   migration between two daemons;
//! - `libvirt-wire`: python3-libvirt's founding workflow and snapshot lookups over libvirt's RPC
//!   protocol, against virtplugd (`--libvirt-socket`, mock) and libvirtd (test driver) in the same
//!   run (options `--sizes 1000,4000`, `--shapes chain`, `--repeat 3`, `--lookup-only`,
//!   `--no-lookup`).
//!
//! Every section prints its rows through `report.rs` (our figure, the floor, the peer, the
//! target); `--check` anywhere in the arguments (`cargo xtask bench --check [section]`) makes the
//! run exit non-zero when any target is missed.
//!
//! This crate only measures; it holds no product logic.

/// The daemon's allocator (see `host/daemon/src/main.rs`): the workflow sections run the host in
/// this process as the daemon runs it, and the daemon section's 16 clients are a multi-threaded
/// program using the host's daemon client, for which docs/api.md advises a per-thread allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cold_start;
mod daemon;
mod fleet;
mod http_floor;
mod libvirt_floor;
mod libvirt_wire;
mod load;
mod proc;
mod qemu;
mod report;
mod vbox;
mod vsphere;
mod vsphere_floor;
mod workflow;
mod workflow_floor;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let (check, args) = report::take_check(std::env::args().skip(1).collect());
    section(&args)?;
    report::finish(check)
}

fn section(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("load-once") => load::once(&args[1]),
        Some("load") => load::run(),
        Some("cold-start") => cold_start::run(),
        Some("workflow") => workflow::run(&args[1..]),
        Some("workflow-one") => workflow::one(&args[1..]),
        Some("workflow-floor") => workflow_floor::one(&args[1..]),
        Some("vsphere") => vsphere::run(),
        Some("vsphere-one") => vsphere::one(&args[1..]),
        Some("vsphere-floor") => vsphere_floor::one(&args[1..]),
        Some("vbox") => vbox::run(),
        Some("qemu") => qemu::run(),
        Some("daemon") => daemon::run(),
        Some("http-floor") => http_floor::serve(&args[1..]),
        Some("fleet") => fleet::run(),
        Some("libvirt-wire") => libvirt_wire::run(&args[1..]),
        Some("libvirt-floor") => libvirt_floor::serve(&args[1..]),
        None | Some("all") => {
            load::run()?;
            cold_start::run()?;
            workflow::run(&[])?;
            vsphere::run()?;
            vbox::run()?;
            qemu::run()?;
            daemon::run()?;
            libvirt_wire::run(&[])
        }
        Some(other) => {
            bail!(
                "unknown section {other}: load | cold-start | workflow | vsphere | vbox | qemu | daemon | libvirt-wire | all"
            )
        }
    }
}
