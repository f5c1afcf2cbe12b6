//! QEMU snapshots through the host library against the bare commands, same image size, same
//! run, as report rows (the bare command is the floor): shut-off `snapshot_create` vs `qemu-img
//! snapshot -c` (target <= 1.25x), running `snapshot_create` vs a bare QMP `snapshot-save` job
//! (target <= 1.25x), and the in-place revert of a running domain (libvirt 9.0 restarts qemu for
//! it: about 1.8 s). Medians of 20.
//! External snapshots (report rows, floor = the bare steps in the same run): disk-only create on
//! a running domain vs qemu-img create + blockdev-add + one `transaction` (<= 1.2x), delete of a
//! 64 MiB active overlay vs the bare block-commit job (<= 1.2x), revert of a running disk-only
//! snapshot (<= 50 ms; done in place, floor: the same QMP steps on a bare qemu).

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use virtplug_host::{Connection, Registry};

use crate::{
    proc::median,
    report::{self, Target, Unit},
};

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
        "<domain type='qemu'><name>bench</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e1930</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vda'/></disk></devices></domain>",
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

/// The internal snapshots' target: at most this multiple of the bare command.
const INTERNAL_TARGET: f64 = 1.25;

/// Prints the comparison; says so and returns when qemu is not installed.
pub fn run() -> Result<()> {
    report::header(&format!(
        "QEMU snapshots: virtplug (host API, qemu plugin) vs the bare commands (64 MiB qcow2, TCG, n = {N}, median)"
    ));
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
    report::Row::new("qemu", "internal create, shut off", Unit::Time, secs(ours))
        .floor(secs(bare))
        .target(Target::Floor(INTERNAL_TARGET))
        .emit();

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
    report::Row::new("qemu", "internal create, running", Unit::Time, secs(ours))
        .floor(secs(bare))
        .target(Target::Floor(INTERNAL_TARGET))
        .emit();

    conn.snapshot_create("bench", "<domainsnapshot><name>keep</name></domainsnapshot>", 0)?;
    let mut reverts = Vec::new();
    for _ in 0..N {
        reverts.push(timed(|| Ok(conn.snapshot_revert("bench", "keep", 0)?))?);
    }
    report::Row::new("qemu", "internal revert, running (in place)", Unit::Time, secs(median(&mut reverts))).emit();
    report::note("floor: shut off, `qemu-img snapshot -c` of the same image; running, a bare qemu's QMP");
    report::note("snapshot-save job (with its query-jobs and job-dismiss), on a domain like the plugin's.");
    report::note("revert in place: qemu is not restarted (libvirt 9.0 restarts it, about 1.8 s).");
    conn.domain_destroy("bench")?;
    println!();
    report::header(
        "QEMU external snapshots: host API (qemu plugin) vs the bare QMP / qemu-img steps (floor), same run",
    );
    external(dir, &conn)?;
    println!();
    Ok(())
}

// ---- external snapshots (issue 17) ----

const N_EXT: usize = 20;
const N_DEL: usize = 5;
const DISK_ONLY: u32 = 16;

fn qemu_io_write(path: &Path, what: &str) -> Result<()> {
    let out = Command::new("qemu-io").args(["-f", "qcow2", "-c", what, &path.display().to_string()]).output()?;
    if !out.status.success() {
        bail!("qemu-io {what}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Starts a bare qemu with `blockdevs` (JSON) and a virtio disk on `drive`; returns its QMP.
fn bare_qemu(dir: &Path, name: &str, blockdevs: &[String], drive: &str) -> Result<Qmp> {
    let sock = dir.join(format!("{name}.sock"));
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", "pc,accel=tcg", "-m", "64", "-nodefaults", "-display", "none", "-S"]);
    for b in blockdevs {
        cmd.args(["-blockdev", b]);
    }
    cmd.args(["-device", &format!("virtio-blk-pci,drive={drive},id=bdev")])
        .args(["-qmp", &format!("unix:{},server=on,wait=off", sock.display())])
        .args(["-pidfile", &dir.join(format!("{name}.pid")).display().to_string(), "-daemonize"]);
    if !cmd.status()?.success() {
        bail!("qemu-system-x86_64 did not start");
    }
    let mut q = Qmp::connect(&sock)?;
    q.cmd(r#"{"execute":"cont"}"#)?;
    Ok(q)
}

fn file_node(path: &Path, node: &str) -> String {
    format!(r#"{{"driver":"file","filename":"{}","node-name":"{node}","auto-read-only":true}}"#, path.display())
}

impl Qmp {
    /// Reads until a line holding `needle` (events included).
    fn until(&mut self, needle: &str) -> Result<()> {
        while !self.line()?.contains(needle) {}
        Ok(())
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Disk-only create on a running domain, delete of a 64 MiB active overlay and revert of a
/// running disk-only snapshot, each beside its bare counterpart measured in this run.
fn external(dir: &Path, conn: &Connection) -> Result<()> {
    let dir = dir.join("ext");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join("ours.qcow2");
    img(&["create", "-q", "-f", "qcow2", &base.display().to_string(), "64M"])?;
    let xml = domain_xml(&base).replace("<name>bench</name>", "<name>ext</name>").replace("1930</uuid>", "1931</uuid>");
    conn.domain_define(&xml)?;

    // 1. disk-only create, running: bare = qemu-img create + blockdev-add x2 + one transaction
    let bare_base = dir.join("bare.qcow2");
    img(&["create", "-q", "-f", "qcow2", &bare_base.display().to_string(), "64M"])?;
    let mut q = bare_qemu(
        &dir,
        "bare1",
        &[file_node(&bare_base, "f0"), r#"{"driver":"qcow2","file":"f0","node-name":"d0"}"#.into()],
        "d0",
    )?;
    conn.domain_start("ext")?;
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    let mut top = ("d0".to_owned(), bare_base.clone());
    for i in 0..N_EXT {
        let ov = dir.join(format!("bare.o{i}"));
        bare.push(timed(|| {
            let (b, o) = (top.1.display().to_string(), ov.display().to_string());
            img(&["create", "-q", "-f", "qcow2", "-b", &b, "-F", "qcow2", &o])?;
            q.cmd(&format!(r#"{{"execute":"blockdev-add","arguments":{}}}"#, file_node(&ov, &format!("f{}", i + 1))))?;
            q.cmd(&format!(
                r#"{{"execute":"blockdev-add","arguments":{{"driver":"qcow2","file":"f{}","node-name":"d{}","backing":null}}}}"#,
                i + 1,
                i + 1
            ))?;
            q.cmd(&format!(
                r#"{{"execute":"transaction","arguments":{{"actions":[{{"type":"blockdev-snapshot","data":{{"node":"{}","overlay":"d{}"}}}}]}}}}"#,
                top.0,
                i + 1
            ))
        })?);
        top = (format!("d{}", i + 1), ov);
        ours.push(timed(|| {
            Ok(conn
                .snapshot_create("ext", &format!("<domainsnapshot><name>c{i}</name></domainsnapshot>"), DISK_ONLY)
                .map(drop)?)
        })?);
    }
    q.cmd(r#"{"execute":"quit"}"#)?;
    report::Row::new("qemu", "external disk-only create, running", Unit::Time, secs(median(&mut ours)))
        .floor(secs(median(&mut bare)))
        .target(Target::Floor(1.2))
        .emit();
    conn.domain_destroy("ext")?;

    // 2. delete of a 64 MiB active overlay: bare = block-commit, ready, job-complete, dismiss
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for i in 0..N_DEL {
        let (b, o) = (dir.join(format!("cb{i}.qcow2")), dir.join(format!("co{i}.qcow2")));
        img(&["create", "-q", "-f", "qcow2", &b.display().to_string(), "64M"])?;
        img(&["create", "-q", "-f", "qcow2", "-b", &b.display().to_string(), "-F", "qcow2", &o.display().to_string()])?;
        qemu_io_write(&o, "write -P 0xaa 0 64M")?;
        let mut q = bare_qemu(
            &dir,
            &format!("bare2-{i}"),
            &[
                file_node(&b, "fb"),
                r#"{"driver":"qcow2","file":"fb","node-name":"db","read-only":true}"#.into(),
                file_node(&o, "ft"),
                r#"{"driver":"qcow2","file":"ft","node-name":"dt","backing":"db"}"#.into(),
            ],
            "dt",
        )?;
        bare.push(timed(|| {
            q.cmd(r#"{"execute":"block-commit","arguments":{"device":"dt","job-id":"c","top-node":"dt","base-node":"db","auto-finalize":true,"auto-dismiss":false}}"#)?;
            q.until("\"ready\"")?;
            q.cmd(r#"{"execute":"job-complete","arguments":{"id":"c"}}"#)?;
            q.until("\"concluded\"")?;
            q.cmd(r#"{"execute":"job-dismiss","arguments":{"id":"c"}}"#)?;
            q.cmd(r#"{"execute":"blockdev-del","arguments":{"node-name":"dt"}}"#)?;
            q.cmd(r#"{"execute":"blockdev-del","arguments":{"node-name":"ft"}}"#)?;
            Ok(std::fs::remove_file(&o)?)
        })?);
        q.cmd(r#"{"execute":"quit"}"#)?;

        conn.snapshot_create("ext", &format!("<domainsnapshot><name>x{i}</name></domainsnapshot>"), DISK_ONLY)?;
        let ov = dir.join(format!("ours.x{i}"));
        qemu_io_write(&ov, "write -P 0xaa 0 64M")?;
        conn.domain_start("ext")?;
        ours.push(timed(|| Ok(conn.snapshot_delete("ext", &format!("x{i}"), 0)?))?);
        conn.domain_destroy("ext")?;
    }
    report::Row::new(
        "qemu",
        "external delete of a 64 MiB active overlay, running",
        Unit::Time,
        secs(median(&mut ours)),
    )
    .floor(secs(median(&mut bare)))
    .target(Target::Floor(1.2))
    .emit();

    // 3. revert of a running disk-only snapshot (in place: qemu is not restarted)
    conn.domain_start("ext")?;
    conn.snapshot_create("ext", "<domainsnapshot><name>rv</name></domainsnapshot>", DISK_ONLY)?;
    let mut ours = Vec::new();
    for _ in 0..N_EXT {
        ours.push(timed(|| Ok(conn.snapshot_revert("ext", "rv", 0)?))?);
    }
    conn.domain_destroy("ext")?;
    // bare: the same in-place steps on a bare qemu (new overlay on the frozen image, opened
    // without backing, one transaction, reopened onto the frozen node, old top deleted, reset)
    let mut bare = Vec::new();
    let b = dir.join("rb.qcow2");
    img(&["create", "-q", "-f", "qcow2", &b.display().to_string(), "64M"])?;
    let o0 = dir.join("rb.o0");
    img(&["create", "-q", "-f", "qcow2", "-b", &b.display().to_string(), "-F", "qcow2", &o0.display().to_string()])?;
    let mut q = bare_qemu(
        &dir,
        "bare3",
        &[
            file_node(&b, "fb"),
            r#"{"driver":"qcow2","file":"fb","node-name":"db","read-only":true}"#.into(),
            file_node(&o0, "f0"),
            r#"{"driver":"qcow2","file":"f0","node-name":"d0","backing":"db"}"#.into(),
        ],
        "d0",
    )?;
    for i in 1..=N_EXT {
        let o = dir.join(format!("rb.o{i}"));
        bare.push(timed(|| {
            let (bs, os) = (b.display().to_string(), o.display().to_string());
            img(&["create", "-q", "-f", "qcow2", "-b", &bs, "-F", "qcow2", &os])?;
            q.cmd(&format!(r#"{{"execute":"blockdev-add","arguments":{}}}"#, file_node(&o, &format!("f{i}"))))?;
            q.cmd(&format!(
                r#"{{"execute":"blockdev-add","arguments":{{"driver":"qcow2","file":"f{i}","node-name":"d{i}","backing":null}}}}"#
            ))?;
            q.cmd(r#"{"execute":"stop"}"#)?;
            q.cmd(&format!(
                r#"{{"execute":"transaction","arguments":{{"actions":[{{"type":"blockdev-snapshot","data":{{"node":"d{}","overlay":"d{i}"}}}}]}}}}"#,
                i - 1
            ))?;
            q.cmd(&format!(
                r#"{{"execute":"blockdev-reopen","arguments":{{"options":[{{"driver":"qcow2","node-name":"d{i}","file":"f{i}","backing":"db"}}]}}}}"#
            ))?;
            q.cmd(&format!(r#"{{"execute":"blockdev-del","arguments":{{"node-name":"d{}"}}}}"#, i - 1))?;
            q.cmd(&format!(r#"{{"execute":"blockdev-del","arguments":{{"node-name":"f{}"}}}}"#, i - 1))?;
            q.cmd(r#"{"execute":"system_reset"}"#)?;
            q.cmd(r#"{"execute":"cont"}"#)
        })?);
    }
    q.cmd(r#"{"execute":"quit"}"#)?;
    report::Row::new("qemu", "external revert of a running disk-only snapshot", Unit::Time, secs(median(&mut ours)))
        .floor(secs(median(&mut bare)))
        .target(Target::AtMost(0.050))
        .emit();
    Ok(())
}
