//! Option checks that virsh does on the client, in its order and with its texts, plus the
//! option → flag tables. Pure: argv is parsed, nothing is connected.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use clap::Parser;
use virtplug_cli::{
    args::{Cli, Command},
    commands::snapshot_list::{Plan, plan},
};
use virtplug_host::flags::snapshot_list as l;

fn list_plan(argv: &str) -> Result<Plan, String> {
    let argv = std::iter::once("virtplug").chain(std::iter::once("snapshot-list")).chain(argv.split_whitespace());
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let Command::SnapshotList(a) = cli.command else { return Err("not snapshot-list".to_owned()) };
    let from = a.from.clone();
    plan(&a, from).map_err(|e| e.lines().join(" / "))
}

#[test]
fn snapshot_list_exclusive_options() {
    let cases: &[(&str, &str)] = &[
        ("test --tree --name", "Options --tree and --name are mutually exclusive"),
        ("test --parent --roots", "Options --parent and --roots are mutually exclusive"),
        ("test --parent --tree", "Options --parent and --tree are mutually exclusive"),
        ("test --roots --tree", "Options --roots and --tree are mutually exclusive"),
        ("test --roots --from s1", "Options --roots and --from are mutually exclusive"),
        ("test --roots --current", "Options --roots and --current are mutually exclusive"),
        ("test --leaves --tree", "--leaves and --tree are mutually exclusive"),
        ("test --tree --no-leaves", "--no-leaves and --tree are mutually exclusive"),
        ("test --tree --inactive", "--inactive and --tree are mutually exclusive"),
        ("test --tree --active", "--active and --tree are mutually exclusive"),
        ("test --tree --disk-only", "--disk-only and --tree are mutually exclusive"),
        ("test --tree --internal", "--internal and --tree are mutually exclusive"),
        ("test --tree --external", "--external and --tree are mutually exclusive"),
        ("test --descendants", "--descendants requires either --from or --current"),
        ("test --from s1 --current", "--from and --current are mutually exclusive"),
        // virsh's order: tree/name is checked first.
        ("test --tree --name --parent --roots", "Options --tree and --name are mutually exclusive"),
        ("test --leaves --tree --parent", "Options --parent and --tree are mutually exclusive"),
    ];
    for (argv, expected) in cases {
        assert_eq!(list_plan(argv), Err(expected.to_string()), "{argv}");
    }
}

#[test]
fn snapshot_list_flags() {
    let cases: &[(&str, u32)] = &[
        ("test", 0),
        ("test --roots", l::ROOTS),
        ("test --leaves --no-leaves", l::LEAVES | l::NO_LEAVES),
        ("test --metadata --no-metadata", l::METADATA | l::NO_METADATA),
        ("test --inactive --active --disk-only", l::INACTIVE | l::ACTIVE | l::DISK_ONLY),
        ("test --internal --external", l::INTERNAL | l::EXTERNAL),
        ("test --topological --name", l::TOPOLOGICAL),
        ("test --from s1 --descendants", l::DESCENDANTS),
        ("test --current --descendants --tree", l::DESCENDANTS),
        ("test --tree --metadata", l::METADATA),
        ("test --parent --leaves", l::LEAVES),
    ];
    for (argv, flags) in cases {
        assert_eq!(list_plan(argv).map(|p| p.flags), Ok(*flags), "{argv}");
    }
    assert_eq!(list_plan("test --from s1").map(|p| p.from), Ok(Some("s1".to_owned())));
}
