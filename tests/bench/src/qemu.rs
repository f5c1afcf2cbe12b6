//! QEMU snapshots through the host library against the bare commands, same image size, same
//! run: shut-off `snapshot_create` vs `qemu-img snapshot -c` (target <= 1.25x), running
//! `snapshot_create` vs a bare QMP `snapshot-save` job (target <= 1.25x), and the in-place revert
//! of a running domain (libvirt 9.0 restarts qemu for it: about 1.8 s). Medians of 20.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use virtplug_host::{Connection, Registry};

use crate::proc::{median, ms};

const N: usize = 20;

fn img(args: &[&str]) -> Result<()> {
    let out = Command::new("qemu-img").args(args).output().context("running qemu-img")?;
    if !out.status.success() {
        bail!("qemu-img {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn domain_xml(path: &Path) -> String {
    format!(
        "<domain type='qemu'><name>bench</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e1930</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vda'/></disk></devices></domain>",
        path.display()
    )
}

/// A bare QMP session on a unix socket.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn connect(sock: &Path) -> Result<Self> {
        let writer = UnixStream::connect(sock)?;
        let mut qmp = Self { reader: BufReader::new(writer.try_clone()?), writer };
        let mut greeting = String::new();
        qmp.reader.read_line(&mut greeting)?;
        qmp.cmd(r#"{"execute":"qmp_capabilities"}"#)?;
        Ok(qmp)
    }

    fn line(&mut self) -> Result<String> {
        let mut l = String::new();
        if self.reader.read_line(&mut l)? == 0 {
            bail!("QMP socket closed");
        }
        Ok(l)
    }

    fn cmd(&mut self, command: &str) -> Result<()> {
        self.writer.write_all(format!("{command}\n").as_bytes())?;
        loop {
            let l = self.line()?;
            if l.contains("\"error\"") {
                bail!("QMP {command}: {l}");
            }
            if l.contains("\"return\"") {
                return Ok(());
            }
        }
    }

    fn job(&mut self, command: &str, id: &str) -> Result<()> {
        self.cmd(command)?;
        while !(self.line()?.contains("concluded")) {}
        self.cmd(r#"{"execute":"query-jobs"}"#)?;
        self.cmd(&format!(r#"{{"execute":"job-dismiss","arguments":{{"id":"{id}"}}}}"#))
    }
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn ratio(ours: Duration, bare: Duration) -> String {
    let r = ours.as_secs_f64() / bare.as_secs_f64().max(1e-9);
    format!("{r:.2}x {}", if r <= 1.25 { "ok" } else { "OVER target" })
}

/// Prints the comparison; says so and returns when qemu is not installed.
pub fn run() -> Result<()> {
    println!(
        "## QEMU snapshots: virtplug (host API, qemu plugin) vs the bare commands (64 MiB qcow2, TCG, n = {N}, median)"
    );
    if Command::new("qemu-system-x86_64").arg("--version").output().is_err()
        || Command::new("qemu-img").arg("--version").output().is_err()
    {
        println!("qemu-img / qemu-system-x86_64: absent (install qemu-utils and qemu-system-x86)\n");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("virtplug-bench-qemu-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&dir);
    let _ = Command::new("pkill").arg("-f").arg(dir.display().to_string()).status();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(dir: &Path) -> Result<()> {
    let bare_img = dir.join("bare.qcow2");
    let bare_path = bare_img.display().to_string();
    img(&["create", "-q", "-f", "qcow2", &bare_path, "64M"])?;
    let ours_img = dir.join("ours.qcow2");
    img(&["create", "-q", "-f", "qcow2", &ours_img.display().to_string(), "64M"])?;
    let registry = Registry::from_env()?;
    let conn =
        Connection::open(&registry, &format!("qemu:///embed?root={}&accel=tcg", dir.join("root").display()), false)?;
    conn.domain_define(&domain_xml(&ours_img))?;

    // Shut off: interleaved, each snapshot removed again so the image stays the same size.
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for i in 0..N {
        bare.push(timed(|| img(&["snapshot", "-c", &format!("b{i}"), &bare_path]))?);
        img(&["snapshot", "-d", &format!("b{i}"), &bare_path])?;
        ours.push(timed(|| {
            Ok(conn
                .snapshot_create("bench", &format!("<domainsnapshot><name>o{i}</name></domainsnapshot>"), 0)
                .map(drop)?)
        })?);
        conn.snapshot_delete("bench", &format!("o{i}"), 0)?;
    }
    let (bare, ours) = (median(&mut bare), median(&mut ours));
    println!(
        "shut off  qemu-img snapshot -c {:>10}   host snapshot_create {:>10}   {}",
        ms(bare),
        ms(ours),
        ratio(ours, bare)
    );

    // Running: a bare qemu with its own QMP socket, and the plugin's domain.
    let sock = dir.join("bare.sock");
    let started = Command::new("qemu-system-x86_64")
        .args(["-machine", "pc,accel=tcg", "-m", "64", "-nodefaults", "-display", "none", "-S"])
        .args(["-blockdev", &format!("driver=file,filename={bare_path},node-name=f0")])
        .args(["-blockdev", "driver=qcow2,file=f0,node-name=d0", "-device", "virtio-blk-pci,drive=d0"])
        .args(["-qmp", &format!("unix:{},server=on,wait=off", sock.display())])
        .args(["-pidfile", &dir.join("bare.pid").display().to_string(), "-daemonize"])
        .status()?;
    if !started.success() {
        bail!("qemu-system-x86_64 did not start");
    }
    let mut qmp = Qmp::connect(&sock)?;
    qmp.cmd(r#"{"execute":"cont"}"#)?;
    conn.domain_start("bench")?;
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for i in 0..N {
        bare.push(timed(|| {
            qmp.job(&format!(r#"{{"execute":"snapshot-save","arguments":{{"job-id":"s{i}","tag":"r{i}","vmstate":"d0","devices":["d0"]}}}}"#), &format!("s{i}"))
        })?);
        qmp.job(
            &format!(
                r#"{{"execute":"snapshot-delete","arguments":{{"job-id":"d{i}","tag":"r{i}","devices":["d0"]}}}}"#
            ),
            &format!("d{i}"),
        )?;
        ours.push(timed(|| {
            Ok(conn
                .snapshot_create("bench", &format!("<domainsnapshot><name>r{i}</name></domainsnapshot>"), 0)
                .map(drop)?)
        })?);
        conn.snapshot_delete("bench", &format!("r{i}"), 0)?;
    }
    qmp.cmd(r#"{"execute":"quit"}"#)?;
    let (bare, ours) = (median(&mut bare), median(&mut ours));
    println!(
        "running   QMP snapshot-save job  {:>10}   host snapshot_create {:>10}   {}",
        ms(bare),
        ms(ours),
        ratio(ours, bare)
    );

    conn.snapshot_create("bench", "<domainsnapshot><name>keep</name></domainsnapshot>", 0)?;
    let mut reverts = Vec::new();
    for _ in 0..N {
        reverts.push(timed(|| Ok(conn.snapshot_revert("bench", "keep", 0)?))?);
    }
    println!(
        "running   revert in place (qemu not restarted; libvirt 9.0 restarts it, about 1.8 s): {}",
        ms(median(&mut reverts))
    );
    conn.domain_destroy("bench")?;
    println!();
    Ok(())
}
