//! The README's demo: the founding workflow between two mock hosts, as a transcript of real
//! `virtplug` invocations. Host A builds a branching hierarchy; every snapshot's secure XML is
//! dumped in topological order; host B redefines them parents first, the current one with
//! `--current`; host A drops its metadata; both trees are shown.

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
        let out = Command::new(&self.virtplug).args(args).output().context("running virtplug")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{stdout}");
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
    let uri_a = format!("mock://{}", work.join("hostA").display());
    let uri_b = format!("mock://{}", work.join("hostB").display());
    let (a, b) = (uri_a.as_str(), uri_b.as_str());

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

    println!("# Dump every snapshot's secure XML, parents first");
    let order = demo.run(&["-c", a, "snapshot-list", "test", "--topological", "--name"])?;
    let names: Vec<&str> = order.lines().filter(|l| !l.is_empty()).collect();
    let mut files = Vec::new();
    for name in &names {
        let xml = demo.run(&["-c", a, "snapshot-dumpxml", "test", name, "--security-info"])?;
        let file = work.join(format!("{}.xml", files.len()));
        std::fs::write(&file, xml)?;
        files.push(file);
    }

    println!("# Host B: redefine them in that order, the current one ({current}) with --current");
    for (name, file) in names.iter().zip(&files) {
        let file = file.display().to_string();
        let mut args = vec!["-c", b, "snapshot-create", "test", "--xmlfile", file.as_str(), "--redefine"];
        if *name == current {
            args.push("--current");
        }
        demo.run(&args)?;
    }

    println!("# Host A: drop the metadata (the snapshots themselves stay on A's disks)");
    for root in demo.run(&["-c", a, "snapshot-list", "test", "--roots", "--name"])?.lines().filter(|l| !l.is_empty()) {
        demo.run(&["-c", a, "snapshot-delete", "test", root, "--metadata", "--children"])?;
    }

    println!("# Both hosts now");
    demo.run(&["-c", a, "snapshot-list", "test"])?;
    demo.run(&["-c", b, "snapshot-list", "test", "--tree"])?;
    demo.run(&["-c", b, "snapshot-current", "test", "--name"])?;
    Ok(())
}
