//! The simulator's state directory (`$VBOXSIM_HOME`): the machine registry
//! (`VirtualBox.xml`, `MachineRegistry/MachineEntry` in registration order), one `.vbox` file per
//! machine under `Machines/<name>/`, the run-time states VirtualBox does not persist
//! (`sim-runtime`), and one-shot faults for tests (`sim-faults`).

use std::path::{Path, PathBuf};

use crate::out::Com;
use crate::vbox::{self, Machine};

pub struct Home {
    pub dir: PathBuf,
}

/// One registry entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub uuid: String,
    pub path: PathBuf,
}

fn io(e: std::io::Error, p: &Path) -> String {
    format!("{}: {e}", p.display())
}

/// A random version-4 UUID.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)).is_ok();
    if !ok {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
                ^ u128::from(std::process::id());
        b = seed.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A UUID argument as VirtualBox's `Guid` parses it (braces optional); `None` if not one, or
/// the nil UUID (which VirtualBox treats as "not a UUID").
pub fn parse_uuid(s: &str) -> Option<String> {
    let t = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(s);
    let b = t.as_bytes();
    let shape = b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    let l = t.to_ascii_lowercase();
    (shape && l != "00000000-0000-0000-0000-000000000000").then_some(l)
}

impl Home {
    pub fn from_env() -> Result<Self, String> {
        let dir = std::env::var_os("VBOXSIM_HOME")
            .ok_or("VBOXSIM_HOME is not set (vboxmanage-sim needs a state directory)")?;
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).map_err(|e| io(e, &dir))?;
        Ok(Self { dir })
    }

    fn registry_path(&self) -> PathBuf {
        self.dir.join("VirtualBox.xml")
    }

    pub fn entries(&self) -> Result<Vec<Entry>, String> {
        let p = self.registry_path();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e, &p)),
        };
        let root = vbox::parse_tree(&text)?;
        let mut out = Vec::new();
        if let Some(reg) = root.child("Global").and_then(|g| g.child("MachineRegistry")) {
            for e in reg.children.iter().filter(|e| e.name == "MachineEntry") {
                let uuid = e.attr("uuid").ok_or("MachineEntry without uuid")?;
                out.push(Entry {
                    uuid: uuid.trim_matches(|c| c == '{' || c == '}').to_ascii_lowercase(),
                    path: PathBuf::from(e.attr("src").ok_or("MachineEntry without src")?),
                });
            }
        }
        Ok(out)
    }

    pub fn save_entries(&self, entries: &[Entry]) -> Result<(), String> {
        let mut o = String::from(
            "<?xml version=\"1.0\"?>\n<VirtualBox xmlns=\"http://www.virtualbox.org/\" version=\"1.12-linux\">\n  <Global>\n    <MachineRegistry>\n",
        );
        for e in entries {
            o.push_str(&format!(
                "      <MachineEntry uuid=\"{{{}}}\" src=\"{}\"/>\n",
                e.uuid,
                vbox::esc_attr(&e.path.display().to_string())
            ));
        }
        o.push_str("    </MachineRegistry>\n  </Global>\n</VirtualBox>\n");
        let p = self.registry_path();
        std::fs::write(&p, o).map_err(|e| io(e, &p))
    }

    fn runtime_path(&self) -> PathBuf {
        self.dir.join("sim-runtime")
    }

    /// The run-time state of a machine (`running`, `paused`, …) and when it was entered, if it
    /// is in a state VirtualBox does not persist in the `.vbox` file.
    pub fn runtime(&self, uuid: &str) -> Option<(String, i64)> {
        let text = std::fs::read_to_string(self.runtime_path()).ok()?;
        text.lines().find_map(|l| {
            let mut it = l.split(' ');
            (it.next()? == uuid).then_some(())?;
            let st = it.next()?.to_owned();
            Some((st, it.next()?.parse().ok()?))
        })
    }

    pub fn set_runtime(&self, uuid: &str, state: Option<(&str, i64)>) -> Result<(), String> {
        let p = self.runtime_path();
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let mut lines: Vec<String> =
            text.lines().filter(|l| l.split(' ').next() != Some(uuid)).map(str::to_owned).collect();
        if let Some((s, t)) = state {
            lines.push(format!("{uuid} {s} {t}"));
        }
        let mut body = lines.join("\n");
        body.push('\n');
        std::fs::write(&p, body).map_err(|e| io(e, &p))
    }

    /// `IVirtualBox::FindMachine` (checklist item 1): UUID if the argument parses as one, else
    /// exact case-sensitive name, else settings-file path.
    pub fn find(
        &self,
        arg: &str,
        context: &'static str,
        line: u32,
        file: &'static str,
    ) -> Result<Result<(Entry, Machine), Com>, String> {
        let entries = self.entries()?;
        let not_found = |text: String| Com {
            text,
            code: "VBOX_E_OBJECT_NOT_FOUND",
            component: "VirtualBoxWrap",
            interface: "IVirtualBox",
            context,
            line,
            file,
        };
        if let Some(u) = parse_uuid(arg) {
            return match entries.into_iter().find(|e| e.uuid == u) {
                Some(e) => {
                    let m = vbox::load(&e.path)?;
                    Ok(Ok((e, m)))
                }
                None => Ok(Err(not_found(format!("Could not find a registered machine with UUID {{{u}}}")))),
            };
        }
        let mut by_path = None;
        for e in entries {
            let m = vbox::load(&e.path)?;
            if m.name == arg {
                return Ok(Ok((e, m)));
            }
            if by_path.is_none() && e.path == Path::new(arg) {
                by_path = Some((e, m));
            }
        }
        Ok(by_path.ok_or_else(|| not_found(format!("Could not find a registered machine named '{arg}'"))))
    }

    /// Machine state short name (`VBoxManageInfo.cpp:346-399`).
    pub fn state(&self, m: &Machine) -> String {
        if let Some((s, _)) = self.runtime(&m.uuid) {
            return s;
        }
        match (m.state_file.is_some(), m.aborted) {
            (true, true) => "aborted-saved",
            (true, false) => "saved",
            (false, true) => "aborted",
            (false, false) => "poweroff",
        }
        .to_owned()
    }

    /// When the current state was entered.
    pub fn state_time(&self, m: &Machine) -> i64 {
        self.runtime(&m.uuid).map_or(m.last_state_change, |(_, t)| t)
    }
}

/// `Global::stringifyMachineState` for a short name (`Global.cpp:667-690`).
pub fn stringify(short: &str) -> &'static str {
    match short {
        "poweroff" => "PoweredOff",
        "saved" => "Saved",
        "teleported" => "Teleported",
        "aborted" => "Aborted",
        "aborted-saved" => "Aborted-Saved",
        "running" => "Running",
        "paused" => "Paused",
        "gurumeditation" => "GuruMeditation",
        "teleporting" => "Teleporting",
        "livesnapshotting" => "LiveSnapshotting",
        "starting" => "Starting",
        "stopping" => "Stopping",
        "saving" => "Saving",
        "restoring" => "Restoring",
        "teleportingpausedvm" => "TeleportingPausedVM",
        "teleportingin" => "TeleportingIn",
        "deletingsnapshotlive" => "DeletingSnapshotOnline",
        "deletingsnapshotlivepaused" => "DeletingSnapshotPaused",
        "onlinesnapshotting" => "OnlineSnapshotting",
        "restoringsnapshot" => "RestoringSnapshot",
        "deletingsnapshot" => "DeletingSnapshot",
        "settingup" => "SettingUp",
        "snapshotting" => "Snapshotting",
        _ => "Unknown",
    }
}

/// All state short names, in `MachineState` order (PoweredOff = 1 … Snapshotting = 23).
pub const STATES: [&str; 23] = [
    "poweroff",
    "saved",
    "teleported",
    "aborted",
    "aborted-saved",
    "running",
    "paused",
    "gurumeditation",
    "teleporting",
    "livesnapshotting",
    "starting",
    "stopping",
    "saving",
    "restoring",
    "teleportingpausedvm",
    "teleportingin",
    "deletingsnapshotlive",
    "deletingsnapshotlivepaused",
    "onlinesnapshotting",
    "restoringsnapshot",
    "deletingsnapshot",
    "settingup",
    "snapshotting",
];

/// `MachineState` number of a short name (1-based).
pub fn state_number(short: &str) -> usize {
    STATES.iter().position(|s| *s == short).map_or(0, |i| i + 1)
}

/// Online = Running (6) … OnlineSnapshotting (19).
pub fn is_online(short: &str) -> bool {
    (6..=19).contains(&state_number(short))
}

/// Transient = Teleporting (9) … Snapshotting (23).
pub fn is_transient(short: &str) -> bool {
    (9..=23).contains(&state_number(short))
}
