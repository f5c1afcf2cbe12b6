//! The simulator-only control interface for tests: `VBoxManage --sim-control <command> …`.
//! **Not part of VBoxManage**; a real VBoxManage rejects `--sim-control`. Commands:
//!
//! - `create-vm <name> [--uuid U] [--memory MB] [--cpus N] [--ostype T]`: creates and registers
//!   a machine, prints its UUID;
//! - `set-state <vm> <state>`: any `VMState` short name; `poweroff`, `saved`, `aborted`,
//!   `aborted-saved` are persisted in the `.vbox` file as VirtualBox does, the others are kept in
//!   the run-time file;
//! - `cfg-file <vm>`: prints the machine's `.vbox` path;
//! - `fault <command> <kind> [arg]`: the next invocation whose first word is `<command>` (e.g.
//!   `snapshot`, `showvminfo`) misbehaves once: `hang` (sleeps an hour), `garble` (prints junk,
//!   exit 0), `truncate` (half of the real stdout), `exit` (arg `"<code> <stderr text>"`),
//!   `vanish` (runs, then unregisters the machine named by the second word).

use crate::home::{self, Home, STATES, is_online};
use crate::out::Out;
use crate::vbox::{self, Machine};

pub fn run(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    let sub = args.first().map(String::as_str).unwrap_or("");
    let rest = args.get(1..).unwrap_or(&[]);
    match sub {
        "create-vm" => create(home, rest, out),
        "set-state" => set_state(home, rest, out),
        "cfg-file" => {
            let vm = rest.first().ok_or("cfg-file <vm>")?;
            match home.find(vm, "", 0, "sim")? {
                Ok((e, _)) => out.out(&format!("{}\n", e.path.display())),
                Err(e) => return Ok(out.com(&e)),
            }
            Ok(0)
        }
        "fault" => {
            let (Some(cmd), Some(kind)) = (rest.first(), rest.get(1)) else {
                return Err("fault <command> <kind> [arg]".to_owned());
            };
            let p = home.dir.join("sim-faults");
            let mut text = std::fs::read_to_string(&p).unwrap_or_default();
            text.push_str(&format!(
                "{cmd}\t{kind}\t{}\n",
                rest.get(2).map_or(String::new(), |a| a.replace('\n', "\\n"))
            ));
            std::fs::write(&p, text).map_err(|e| e.to_string())?;
            Ok(0)
        }
        other => Err(format!("unknown --sim-control command '{other}'")),
    }
}

fn create(home: &Home, rest: &[String], out: &mut Out) -> Result<u8, String> {
    let name = rest.first().ok_or("create-vm <name> [--uuid U] [--memory MB] [--cpus N] [--ostype T]")?;
    let mut uuid = home::new_uuid();
    let mut m = Machine::new(String::new(), name.clone(), crate::time::now());
    let mut it = rest[1..].iter();
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--uuid" => uuid = home::parse_uuid(v).ok_or("bad --uuid")?,
            "--memory" => m.memory_mb = v.parse().map_err(|_| "bad --memory")?,
            "--cpus" => m.cpus = v.parse().map_err(|_| "bad --cpus")?,
            "--ostype" => m.os_type = v.clone(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    m.uuid = uuid.clone();
    let mut entries = home.entries()?;
    if entries.iter().any(|e| e.uuid == uuid) {
        return Err(format!("a machine with UUID {uuid} exists"));
    }
    // Directory per machine UUID, so that two machines may share a name (as VirtualBox allows
    // with different base folders).
    let dir = home.dir.join("Machines").join(&uuid);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{}.vbox", name.replace('/', "_")));
    vbox::save(&path, &m)?;
    entries.push(home::Entry { uuid: uuid.clone(), path });
    home.save_entries(&entries)?;
    out.out(&format!("{uuid}\n"));
    Ok(0)
}

fn set_state(home: &Home, rest: &[String], out: &mut Out) -> Result<u8, String> {
    let (Some(vm), Some(state)) = (rest.first(), rest.get(1)) else {
        return Err("set-state <vm> <state>".to_owned());
    };
    if !STATES.contains(&state.as_str()) {
        return Err(format!("unknown state '{state}'"));
    }
    let (entry, mut m) = match home.find(vm, "", 0, "sim")? {
        Ok(x) => x,
        Err(e) => return Ok(out.com(&e)),
    };
    let now = crate::time::now();
    let persisted = ["poweroff", "saved", "aborted", "aborted-saved"].contains(&state.as_str());
    if persisted || is_online(state) {
        let saved = state == "saved" || state == "aborted-saved";
        m.state_file = saved.then(|| format!("Snapshots/{}.sav", crate::time::file_stamp(now)));
        m.aborted = state.starts_with("aborted");
        m.last_state_change = now;
        vbox::save(&entry.path, &m)?;
    }
    home.set_runtime(&m.uuid, (!persisted).then_some((state.as_str(), now)))?;
    Ok(0)
}

/// A one-shot fault for this invocation's first word, removed from the file when taken.
pub fn take_fault(home: &Home, command: &str) -> Option<(String, String)> {
    let p = home.dir.join("sim-faults");
    let text = std::fs::read_to_string(&p).ok()?;
    let mut lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| l.split('\t').next() == Some(command))?;
    let line = lines.remove(i);
    let mut body = lines.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    std::fs::write(&p, body).ok()?;
    let mut parts = line.splitn(3, '\t');
    parts.next();
    Some((parts.next()?.to_owned(), parts.next().unwrap_or("").to_owned()))
}
