//! `VBoxManage snapshot …` (`VBoxManageSnapshot.cpp` `handleSnapshot()`, reference §1.2, §1.3,
//! §2; checklist items 4–15). Texts, exit codes and `.vbox` effects follow the cited lines.

use crate::home::{Home, is_online, is_transient, parse_uuid, stringify};
use crate::out::{Com, Out, SNAPSHOT_USAGE};
use crate::vbox::{self, Machine, Snap};

const FILE: &str = "VBoxManageSnapshot.cpp";

/// `snapshot list --machinereadable` / showvminfo's snapshot section (`VBoxManageInfo.cpp:263-331`):
/// pre-order, 1-based suffixes, description only if non-empty, `Current*` right after the current
/// node, values raw.
pub fn machine_lines(m: &Machine) -> String {
    let mut o = String::new();
    for (s, _, suffix) in m.preorder() {
        o.push_str(&format!("SnapshotName{suffix}=\"{}\"\n", s.name));
        o.push_str(&format!("SnapshotUUID{suffix}=\"{}\"\n", s.uuid));
        if !s.description.is_empty() {
            o.push_str(&format!("SnapshotDescription{suffix}=\"{}\"\n", s.description));
        }
        if m.current.as_deref() == Some(s.uuid.as_str()) {
            o.push_str(&format!("CurrentSnapshotName=\"{}\"\n", s.name));
            o.push_str(&format!("CurrentSnapshotUUID=\"{}\"\n", s.uuid));
            o.push_str(&format!("CurrentSnapshotNode=\"SnapshotName{suffix}\"\n"));
        }
    }
    o
}

/// Human-readable `snapshot list` (three spaces per level, ` *` on the current one).
pub fn human_lines(m: &Machine) -> String {
    let mut o = String::new();
    for (s, _, suffix) in m.preorder() {
        let depth = suffix.matches('-').count();
        let prefix = "   ".repeat(depth);
        let star = if m.current.as_deref() == Some(s.uuid.as_str()) { " *" } else { "" };
        o.push_str(&format!("   {prefix}Name: {} (UUID: {}){star}\n", s.name, s.uuid));
        if s.description.contains('\n') {
            o.push_str(&format!("   {prefix}Description:\n{}\n", s.description));
        } else if !s.description.is_empty() {
            o.push_str(&format!("   {prefix}Description: {}\n", s.description));
        }
    }
    o
}

fn com(
    text: String,
    code: &'static str,
    component: &'static str,
    interface: &'static str,
    context: &'static str,
    line: u32,
) -> Com {
    Com { text, code, component, interface, context, line, file: FILE }
}

/// `Machine::findSnapshot` (`MachineImpl.cpp:5645-5666`; checklist item 12).
fn find<'a>(m: &'a Machine, arg: &str) -> Result<&'a Snap, Com> {
    const CTX: &str = "FindSnapshot(Bstr(a->argv[2]).raw(), pSnapshot.asOutParam())";
    let uuid = parse_uuid(arg);
    let Some(root) = &m.root else {
        let code = if uuid.is_some() || arg.is_empty() { "NS_ERROR_FAILURE" } else { "VBOX_E_OBJECT_NOT_FOUND" };
        return Err(com(
            "This machine does not have any snapshots".to_owned(),
            code,
            "SessionMachine",
            "IMachine",
            CTX,
            537,
        ));
    };
    if arg.is_empty() {
        return Ok(root);
    }
    let all = m.preorder();
    if let Some(u) = uuid {
        return all.into_iter().map(|(s, _, _)| s).find(|s| s.uuid == u).ok_or_else(|| {
            com(
                format!("Could not find a snapshot with UUID {{{u}}}"),
                "NS_ERROR_FAILURE",
                "SessionMachine",
                "IMachine",
                CTX,
                537,
            )
        });
    }
    all.into_iter().map(|(s, _, _)| s).find(|s| s.name == arg).ok_or_else(|| {
        com(
            format!("Could not find a snapshot named '{arg}'"),
            "VBOX_E_OBJECT_NOT_FOUND",
            "SessionMachine",
            "IMachine",
            CTX,
            537,
        )
    })
}

/// Entry point: `args` are the words after `snapshot`.
pub fn handle(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    if args.is_empty() {
        out.out(SNAPSHOT_USAGE);
        return Ok(1);
    }
    if args.len() < 2 {
        out.syntax("Not enough parameters", SNAPSHOT_USAGE);
        return Ok(2);
    }
    let (entry, mut m) =
        match home.find(&args[0], "FindMachine(Bstr(a->argv[0]).raw(), pMachine.asOutParam())", 344, FILE)? {
            Ok(x) => x,
            Err(e) => return Ok(out.com(&e)),
        };
    let state = home.state(&m);
    let rest = &args[2..];
    let before = m.clone();
    let code = match args[1].as_str() {
        "take" => take(home, &mut m, &state, rest, out)?,
        "delete" => delete(&mut m, &state, rest, out),
        "restore" => {
            if rest.len() != 1 {
                out.syntax("Expecting snapshot name only", SNAPSHOT_USAGE);
                1
            } else {
                match find(&m, &rest[0]) {
                    Ok(s) => {
                        let uuid = s.uuid.clone();
                        restore(home, &mut m, &state, &uuid, out)?
                    }
                    Err(e) => out.com(&e),
                }
            }
        }
        "restorecurrent" => {
            if !rest.is_empty() {
                out.syntax("Too many arguments", SNAPSHOT_USAGE);
                1
            } else if let Some(c) = m.current.clone().filter(|_| m.root.is_some()) {
                restore(home, &mut m, &state, &c, out)?
            } else {
                out.out("This machine does not have any snapshots\n");
                1
            }
        }
        "edit" => edit(&mut m, rest, out),
        "list" => list(&m, rest, out),
        "showvminfo" => {
            if rest.len() != 1 {
                out.syntax("Expecting snapshot name only", SNAPSHOT_USAGE);
                1
            } else {
                match find(&m, &rest[0]) {
                    // Human-readable snapshot VM info: not specified by the reference [U].
                    Ok(s) => {
                        out.out(&format!(
                            "Name:                        {}\nUUID:                        {}\n",
                            m.name, m.uuid
                        ));
                        out.out(&format!("Snapshot:                    {} ({})\n", s.name, s.uuid));
                        0
                    }
                    Err(e) => out.com(&e),
                }
            }
        }
        "dump" => 0,
        other => {
            out.syntax(&format!("Invalid parameter '{other}'"), SNAPSHOT_USAGE);
            1
        }
    };
    if m != before {
        vbox::save(&entry.path, &m)?;
    }
    Ok(code)
}

#[derive(Default)]
struct Unique {
    number: bool,
    timestamp: bool,
    space: bool,
    force: bool,
}

/// `--uniquename` value (`VBoxManageSnapshot.cpp:276-318`): comma list, case-insensitive,
/// any prefix of the four keywords.
fn parse_unique(s: &str) -> Option<Unique> {
    let mut u = Unique::default();
    for part in s.split(',') {
        let p = part.trim().to_ascii_lowercase();
        if p.is_empty() {
            return None;
        }
        match () {
            () if "number".starts_with(&p) => u.number = true,
            () if "timestamp".starts_with(&p) => u.timestamp = true,
            () if "space".starts_with(&p) => u.space = true,
            () if "force".starts_with(&p) => u.force = true,
            () => return None,
        }
    }
    Some(u)
}

fn take(home: &Home, m: &mut Machine, state: &str, rest: &[String], out: &mut Out) -> Result<u8, String> {
    let Some(name) = rest.first() else {
        out.syntax("Missing snapshot name", SNAPSHOT_USAGE);
        return Ok(1);
    };
    let mut name = name.clone();
    let mut desc = String::new();
    let mut unique: Option<Unique> = None;
    let mut it = rest[1..].iter();
    while let Some(a) = it.next() {
        let (k, inline) = a.split_once('=').map_or((a.as_str(), None), |(k, v)| (k, Some(v.to_owned())));
        match k {
            "--description" | "-description" | "-desc" => match inline.or_else(|| it.next().cloned()) {
                Some(d) => desc = d,
                None => {
                    out.error(&format!("Option {k} requires a value"));
                    return Ok(1);
                }
            },
            "--live" | "--pause" => {}
            "--uniquename" => {
                let v = inline.or_else(|| it.next().cloned()).unwrap_or_default();
                match parse_unique(&v) {
                    Some(u) => unique = Some(u),
                    None => {
                        out.error(&format!("Invalid unique name description '{v}'"));
                        return Ok(2);
                    }
                }
            }
            other if other.starts_with('-') => {
                out.error(&format!("Unknown option: {other}"));
                return Ok(1);
            }
            other => {
                out.error(&format!("Invalid parameter '{other}'"));
                return Ok(1);
            }
        }
    }
    const CTX: &str = "TakeSnapshot(Bstr(pszName).raw(), Bstr(pszDescription).raw(), fPause, snapshotId.asOutParam(), progress.asOutParam())";
    let now = crate::time::now();
    if let Some(u) = unique.filter(|u| u.number || u.timestamp) {
        let exists = |n: &str| m.preorder().iter().any(|(s, _, _)| s.name == n);
        if u.force || exists(&name) {
            let sep = if u.space { " " } else { "" };
            let mut found = None;
            for i in 0..500i64 {
                let cand = if u.number {
                    format!("{name}{sep}{}", i + if u.force { 1 } else { 2 })
                } else {
                    format!("{name}{sep}{}", crate::time::vbox_stamp(now + i))
                };
                if !exists(&cand) {
                    found = Some(cand);
                    break;
                }
            }
            match found {
                Some(n) => name = n,
                None => {
                    out.error("Failed to generate a unique snapshot name");
                    return Ok(1);
                }
            }
        }
    }
    if is_transient(state) {
        let text = format!(
            "Cannot take a snapshot of the machine while it is changing the state (machine state: {})",
            stringify(state)
        );
        return Ok(out.com(&com(text, "VBOX_E_INVALID_VM_STATE", "SessionMachine", "IMachine", CTX, 487)));
    }
    let online = is_online(state);
    let state_file =
        if online { Some(format!("Snapshots/{}.sav", crate::time::file_stamp(now))) } else { m.state_file.clone() };
    let uuid = crate::home::new_uuid();
    let snap = Snap { uuid: uuid.clone(), name, time: now, state_file, description: desc, children: Vec::new() };
    let current = m.current.clone().filter(|c| m.find(c).is_some());
    if m.root.is_none() {
        m.root = Some(snap);
    } else if let Some(parent) = current.and_then(|c| m.find_mut(&c)) {
        parent.children.push(snap);
    } else if let Some(r) = m.root.as_mut() {
        r.children.push(snap);
    }
    m.current = Some(uuid.clone());
    if !online {
        m.current_state_modified = false;
    }
    let _ = home;
    out.progress();
    out.out(&format!("Snapshot taken. UUID: {uuid}\n"));
    Ok(0)
}

fn delete(m: &mut Machine, state: &str, rest: &[String], out: &mut Out) -> u8 {
    if rest.len() != 1 {
        out.syntax("Expecting snapshot name only", SNAPSHOT_USAGE);
        return 1;
    }
    let (uuid, name, nchildren) = match find(m, &rest[0]) {
        Ok(s) => (s.uuid.clone(), s.name.clone(), s.children.len()),
        Err(e) => return out.com(&e),
    };
    // Printed before the delete call, so it also appears when the delete is refused (line 549).
    out.out(&format!("Deleting snapshot '{name}' ({uuid})\n"));
    const CTX: &str = "DeleteSnapshot(bstrSnapGuid.raw(), pProgress.asOutParam())";
    let refuse = |out: &mut Out, text: String, code| out.com(&com(text, code, "SessionMachine", "IMachine", CTX, 554));
    if is_transient(state) {
        return refuse(
            out,
            format!(
                "Cannot delete a snapshot of the machine while it is changing the state (machine state: {})",
                stringify(state)
            ),
            "VBOX_E_INVALID_VM_STATE",
        );
    }
    if is_online(state) && state != "running" && state != "paused" {
        return refuse(out, format!("Invalid machine state: {}", stringify(state)), "VBOX_E_INVALID_VM_STATE");
    }
    if nchildren > 1 {
        return refuse(
            out,
            format!(
                "Snapshot '{name}' of the machine '{}' cannot be deleted, because it has {nchildren} child snapshots, which is more than the one snapshot allowed for deletion",
                m.name
            ),
            "VBOX_E_INVALID_OBJECT_STATE",
        );
    }
    let is_current = m.current.as_deref() == Some(uuid.as_str());
    if is_current && nchildren == 1 {
        return refuse(
            out,
            format!(
                "Snapshot '{name}' of the machine '{}' cannot be deleted, because it is the current snapshot and has one child snapshot",
                m.name
            ),
            "VBOX_E_INVALID_OBJECT_STATE",
        );
    }
    let parent = m.parent_of(&uuid);
    let removed = match &parent {
        Some(p) => m.find_mut(p).and_then(|p| {
            let i = p.children.iter().position(|c| c.uuid == uuid)?;
            let mut node = p.children.remove(i);
            // The only child goes to the end of the grandparent's list (SnapshotImpl.cpp:313-321).
            p.children.append(&mut node.children);
            Some(node)
        }),
        None => {
            let taken = m.root.take();
            taken.map(|mut r| {
                m.root = r.children.pop();
                r
            })
        }
    };
    if removed.is_some() && is_current {
        m.current = parent;
        m.current_state_modified = true;
    }
    out.progress();
    0
}

fn restore(home: &Home, m: &mut Machine, state: &str, uuid: &str, out: &mut Out) -> Result<u8, String> {
    let Some(s) = m.find(uuid).cloned() else { return Ok(1) };
    out.out(&format!("Restoring snapshot '{}' ({})\n", s.name, s.uuid));
    if is_online(state) || is_transient(state) {
        let text =
            format!("Cannot delete the current state of the running machine (machine state: {})", stringify(state));
        return Ok(out.com(&com(
            text,
            "VBOX_E_INVALID_VM_STATE",
            "SessionMachine",
            "IMachine",
            "RestoreSnapshot(pSnapshot, pProgress.asOutParam())",
            560,
        )));
    }
    m.current = Some(s.uuid.clone());
    m.state_file = s.state_file.clone();
    m.aborted = false;
    m.last_state_change = s.time;
    m.current_state_modified = false;
    home.set_runtime(&m.uuid, None)?;
    out.progress();
    Ok(0)
}

fn edit(m: &mut Machine, rest: &[String], out: &mut Out) -> u8 {
    if rest.is_empty() {
        out.syntax("Missing snapshot name", SNAPSHOT_USAGE);
        return 1;
    }
    let mut target: Option<String> = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let (k, inline) = a.split_once('=').map_or((a.as_str(), None), |(k, v)| (k, Some(v.to_owned())));
        match k {
            "--current" | "-current" => match m.current.clone().filter(|_| m.root.is_some()) {
                Some(c) => target = Some(c),
                None => {
                    out.out("This machine does not have any snapshots\n");
                    return 1;
                }
            },
            "--name" | "-name" | "-newname" | "--description" | "-description" | "-desc" => {
                let Some(v) = inline.or_else(|| it.next().cloned()) else {
                    out.error(&format!("Option {k} requires a value"));
                    return 1;
                };
                // `--name` before any snapshot operand is undefined upstream; refused here.
                let Some(t) = target.clone() else {
                    out.syntax("Missing snapshot name", SNAPSHOT_USAGE);
                    return 1;
                };
                let is_name = matches!(k, "--name" | "-name" | "-newname");
                if is_name && parse_uuid(&v).is_some() {
                    let e = com(
                        "A machine cannot have a UUID as its name".to_owned(),
                        "NS_ERROR_INVALID_ARG",
                        "Snapshot",
                        "ISnapshot",
                        "pSnapshot->COMSETTER(Name)(Bstr(ValueUnion.psz).raw())",
                        610,
                    );
                    return out.com(&e);
                }
                if let Some(s) = m.find_mut(&t) {
                    if is_name { s.name = v } else { s.description = v }
                }
            }
            other if other.starts_with('-') => {
                out.error(&format!("Unknown option: {other}"));
                return 1;
            }
            other => match find(m, other) {
                Ok(s) => target = Some(s.uuid.clone()),
                Err(e) => return out.com(&e),
            },
        }
    }
    0
}

fn list(m: &Machine, rest: &[String], out: &mut Out) -> u8 {
    let mut machine = false;
    for a in rest {
        match a.as_str() {
            "--machinereadable" | "-machinereadable" => machine = true,
            "--details" | "-details" => machine = false,
            other => {
                out.error(&format!("Unknown option: {other}"));
                return 1;
            }
        }
    }
    if m.root.is_none() {
        // FindSnapshot("") failed: message on stdout, exit 1 (lines 206-209).
        out.out("This machine does not have any snapshots\n");
        return 1;
    }
    out.out(&if machine { machine_lines(m) } else { human_lines(m) });
    0
}
