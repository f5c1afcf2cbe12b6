//! The README's demo: the founding workflow between mock hosts, as a transcript of real
//! `virtplug` invocations. Host A builds a branching hierarchy; host B receives it with
//! `snapshot-export` / `snapshot-import` (one transaction); host C receives it the libvirt way
//! (dump every secure XML parents first, redefine in that order, the current one with
//! `--current`); host A drops its metadata; the trees are shown and B and C compared.

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};

use crate::build_dir;

struct Demo {
    virtplug: std::path::PathBuf,
}

impl Demo {
    /// Runs `virtplug ARGS`, echoing the command and its output; fails on a non-zero exit.
    fn run(&self, args: &[&str]) -> Result<String> {
        println!("$ virtplug {}", args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "));
        let stdout = self.run_quiet(args)?;
        print!("{stdout}");
        Ok(stdout)
    }

    /// Runs `virtplug ARGS` without echoing; fails on a non-zero exit.
    fn run_quiet(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.virtplug).args(args).output().context("running virtplug")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!("virtplug {} failed ({})", args.join(" "), out.status);
        }
        Ok(stdout)
    }
}

fn shell_quote(arg: &str) -> String {
    if arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=".contains(c)) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Runs the demo in a fresh temporary directory.
pub fn run() -> Result<()> {
    let virtplug = build_dir().join("virtplug");
    if !virtplug.is_file() {
        bail!("{} is not built", virtplug.display());
    }
    let work = std::env::temp_dir().join(format!("virtplug-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = workflow(&Demo { virtplug }, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn workflow(demo: &Demo, work: &Path) -> Result<()> {
    let uri = |host: &str| format!("mock://{}", work.join(host).display());
    let (uri_a, uri_b, uri_c) = (uri("hostA"), uri("hostB"), uri("hostC"));
    let (a, b, c) = (uri_a.as_str(), uri_b.as_str(), uri_c.as_str());

    println!("# Host A: build a branching snapshot hierarchy on domain 'test'");
    demo.run(&["-c", a, "snapshot-create-as", "test", "base", "first snapshot"])?;
    demo.run(&["-c", a, "snapshot-create-as", "test", "s2"])?;
    demo.run(&["-c", a, "snapshot-create-as", "test", "s3"])?;
    demo.run(&["-c", a, "snapshot-revert", "test", "base"])?;
    demo.run(&["-c", a, "snapshot-create-as", "test", "branch"])?;
    demo.run(&["-c", a, "snapshot-create-as", "test", "branch-child"])?;
    demo.run(&["-c", a, "snapshot-revert", "test", "s2"])?;
    demo.run(&["-c", a, "snapshot-list", "test", "--tree"])?;
    demo.run(&["-c", a, "snapshot-list", "test", "--parent"])?;
    let current = demo.run(&["-c", a, "snapshot-current", "test", "--name"])?.trim().to_owned();

    println!("# A -> B in one command each: export the hierarchy, check it on B, import it in one transaction");
    let bundle = work.join("test.bundle");
    let bundle = bundle.display().to_string();
    demo.run(&["-c", a, "snapshot-export", "test", "--file", &bundle])?;
    demo.run(&["-c", b, "snapshot-import", "test", &bundle, "--dry-run"])?;
    demo.run(&["-c", b, "snapshot-import", "test", &bundle])?;

    println!("# A -> C the libvirt way: dump each snapshot's secure XML parents first, redefine in that order,");
    println!("# the current one ({current}) with --current (XML output not shown)");
    let order = demo.run(&["-c", a, "snapshot-list", "test", "--topological", "--name"])?;
    for (i, name) in order.lines().filter(|l| !l.is_empty()).enumerate() {
        let xml = demo.run_quiet(&["-c", a, "snapshot-dumpxml", "test", name, "--security-info"])?;
        let file = work.join(format!("{i}.xml")).display().to_string();
        std::fs::write(&file, xml)?;
        let mut args = vec!["-c", c, "snapshot-create", "test", "--xmlfile", file.as_str(), "--redefine"];
        if name == current {
            args.push("--current");
        }
        demo.run(&args)?;
    }

    println!("# Host A: drop the metadata (the snapshots themselves would stay on A's disks)");
    for root in demo.run(&["-c", a, "snapshot-list", "test", "--roots", "--name"])?.lines().filter(|l| !l.is_empty()) {
        demo.run(&["-c", a, "snapshot-delete", "test", root, "--metadata", "--children"])?;
    }

    println!("# All three hosts now");
    demo.run(&["-c", a, "snapshot-list", "test"])?;
    demo.run(&["-c", b, "snapshot-list", "test", "--tree"])?;
    demo.run(&["-c", b, "snapshot-current", "test", "--name"])?;
    let tree_b = demo.run_quiet(&["-c", b, "snapshot-list", "test", "--parent"])?;
    let tree_c = demo.run_quiet(&["-c", c, "snapshot-list", "test", "--parent"])?;
    if tree_b != tree_c {
        bail!("hosts B and C differ:\n{tree_b}\n{tree_c}");
    }
    println!("# B and C hold the same tree, parents and creation times as A had; current is {current} on both");
    Ok(())
}
