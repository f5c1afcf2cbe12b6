//! Machine-level commands: `list vms|runningvms` (item 2), `showvminfo` (item 3), and the
//! lifecycle commands `createvm`, `unregistervm`, `startvm`, `controlvm`. The reference does not
//! pin down the lifecycle commands' output; their texts here are marked [U] and the plugin relies
//! only on their exit codes.

use crate::home::{self, Home, is_online, stringify};
use crate::out::{Com, Out};
use crate::snapshot::{human_lines, machine_lines};
use crate::vbox::{self, Machine};

/// `showvminfo`'s machine-readable string escaping: `"` and `\` prefixed with `\`.
fn q(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `ostype=` prints the type's description, not its id.
fn os_description(id: &str) -> &str {
    match id {
        "Other" => "Other/Unknown",
        "Other_64" => "Other/Unknown (64-bit)",
        "Ubuntu_64" => "Ubuntu (64-bit)",
        "Debian_64" => "Debian (64-bit)",
        _ => id,
    }
}

pub fn list(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    let mut sorted = false;
    let mut what = None;
    for a in args {
        match a.as_str() {
            "--sorted" | "-s" => sorted = true,
            "--long" | "-l" => {}
            "vms" | "runningvms" => what = Some(a.as_str()),
            other => {
                out.syntax(
                    &format!("Unknown subcommand '{other}'"),
                    "Usage:\n\nVBoxManage list [--long] [--sorted] vms|runningvms\n",
                );
                return Ok(2);
            }
        }
    }
    let Some(what) = what else {
        out.syntax(
            "Missing subcommand for \"list\" command.",
            "Usage:\n\nVBoxManage list [--long] [--sorted] vms|runningvms\n",
        );
        return Ok(2);
    };
    let mut rows = Vec::new();
    for e in home.entries()? {
        match vbox::load(&e.path) {
            Ok(m) => {
                let st = home.state(&m);
                let running = ["running", "teleporting", "livesnapshotting", "paused", "teleportingpausedvm"]
                    .contains(&st.as_str());
                if what == "vms" || running {
                    rows.push((m.name.clone(), e.uuid.clone()));
                }
            }
            Err(_) if what == "vms" => rows.push(("<inaccessible>".to_owned(), e.uuid.clone())),
            Err(_) => {}
        }
    }
    if sorted {
        rows.sort_by(|a, b| a.0.cmp(&b.0));
    }
    for (n, u) in rows {
        out.out(&format!("\"{n}\" {{{u}}}\n"));
    }
    Ok(0)
}

pub fn showvminfo(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    let mut vm = None;
    let (mut mr, mut details, mut log) = (false, false, false);
    for a in args {
        match a.as_str() {
            "--machinereadable" | "-machinereadable" => mr = true,
            "--details" | "-details" => details = true,
            s if s.starts_with("--log") => log = true,
            s if vm.is_none() => vm = Some(s.to_owned()),
            s => {
                out.syntax(
                    &format!("Invalid parameter '{s}'"),
                    "Usage:\n\nVBoxManage showvminfo <uuid|vmname> [--details] [--machinereadable]\n",
                );
                return Ok(2);
            }
        }
    }
    if log && (mr || details) {
        out.syntax(
            "Option --log is exclusive",
            "Usage:\n\nVBoxManage showvminfo <uuid|vmname> [--details] [--machinereadable]\n",
        );
        return Ok(2);
    }
    let Some(vm) = vm else {
        out.syntax(
            "VM name or UUID required",
            "Usage:\n\nVBoxManage showvminfo <uuid|vmname> [--details] [--machinereadable]\n",
        );
        return Ok(2);
    };
    let (entry, m) = match home.find(
        &vm,
        "FindMachine(Bstr(VMNameOrUuid).raw(), machine.asOutParam())",
        3137,
        "VBoxManageInfo.cpp",
    )? {
        Ok(x) => x,
        Err(e) => return Ok(out.com(&e)),
    };
    let st = home.state(&m);
    let dir = entry.path.parent().map(|p| p.display().to_string()).unwrap_or_default();
    if mr {
        out.out(&format!("name=\"{}\"\n", q(&m.name)));
        out.out("Encryption:     disabled\n");
        out.out("groups=\"/\"\n");
        out.out(&format!("ostype=\"{}\"\n", q(os_description(&m.os_type))));
        out.out(&format!("UUID=\"{}\"\n", m.uuid));
        out.out(&format!("CfgFile=\"{}\"\n", q(&entry.path.display().to_string())));
        out.out(&format!("SnapFldr=\"{}\"\n", q(&format!("{dir}/Snapshots"))));
        out.out(&format!("LogFldr=\"{}\"\n", q(&format!("{dir}/Logs"))));
        out.out(&format!("memory={}\n", m.memory_mb));
        out.out(&format!("cpus={}\n", m.cpus));
        out.out(&format!("VMState=\"{st}\"\n"));
        out.out(&format!("VMStateChangeTime=\"{}\"\n", crate::time::state_change_time(home.state_time(&m))));
        if let Some(f) = &m.state_file {
            out.out(&format!("VMStateFile=\"{}\"\n", q(&format!("{dir}/{f}"))));
        }
        if !m.description.is_empty() {
            out.out(&format!("description=\"{}\"\n", q(&m.description)));
        }
        out.out(&machine_lines(&m));
    } else {
        // Human-readable layout: not pinned down by the reference [U]; a short subset.
        out.out(&format!("Name:                        {}\n", m.name));
        out.out(&format!("UUID:                        {}\n", m.uuid));
        out.out(&format!("Config file:                 {}\n", entry.path.display()));
        out.out(&format!("Memory size:                 {}MB\n", m.memory_mb));
        out.out(&format!(
            "State:                       {} (since {})\n",
            stringify(&st).to_lowercase(),
            crate::time::state_change_time(home.state_time(&m))
        ));
        if m.root.is_some() {
            out.out("* Snapshots:\n");
            out.out(&human_lines(&m));
        }
    }
    Ok(0)
}

/// `createvm --name N [--register] [--uuid U] [--ostype T] [--basefolder DIR]`. Output [U].
pub fn createvm(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    let (mut name, mut register, mut uuid, mut ostype, mut base) = (None, false, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (k, inline) = a.split_once('=').map_or((a.as_str(), None), |(k, v)| (k, Some(v.to_owned())));
        let mut val = || inline.clone().or_else(|| it.next().cloned());
        match k {
            "--name" | "-name" => name = val(),
            "--register" | "-register" => register = true,
            "--uuid" | "-uuid" => uuid = val(),
            "--ostype" | "-ostype" => ostype = val(),
            "--basefolder" | "-basefolder" => base = val(),
            other => {
                out.error(&format!("Unknown option: {other}"));
                return Ok(2);
            }
        }
    }
    let Some(name) = name else {
        out.syntax("Parameter --name is required", "Usage:\n\nVBoxManage createvm --name=name [--register]\n");
        return Ok(2);
    };
    let uuid = match uuid {
        Some(u) => match home::parse_uuid(&u) {
            Some(u) => u,
            None => {
                out.error(&format!("Invalid UUID format {u}"));
                return Ok(2);
            }
        },
        None => home::new_uuid(),
    };
    let dir = base.map_or_else(|| home.dir.join("Machines"), std::path::PathBuf::from).join(&name);
    let path = dir.join(format!("{name}.vbox"));
    if path.exists() {
        out.error(&format!("Machine settings file '{}' already exists", path.display()));
        return Ok(1);
    }
    let mut entries = home.entries()?;
    if entries.iter().any(|e| e.uuid == uuid) {
        out.error(&format!("A machine with UUID {{{uuid}}} is already registered"));
        return Ok(1);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut m = Machine::new(uuid.clone(), name.clone(), crate::time::now());
    if let Some(t) = ostype {
        m.os_type = t;
    }
    vbox::save(&path, &m)?;
    if register {
        entries.push(home::Entry { uuid: uuid.clone(), path: path.clone() });
        home.save_entries(&entries)?;
        out.out(&format!("Virtual machine '{name}' is created and registered.\n"));
    } else {
        out.out(&format!("Virtual machine '{name}' is created.\n"));
    }
    out.out(&format!("UUID: {uuid}\nSettings file: '{}'\n", path.display()));
    Ok(0)
}

/// `unregistervm <vm> [--delete]`.
pub fn unregistervm(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    let Some(vm) = args.first() else {
        out.syntax("VM name required", "Usage:\n\nVBoxManage unregistervm <uuid|vmname> [--delete]\n");
        return Ok(2);
    };
    let (entry, _) =
        match home.find(vm, "FindMachine(Bstr(VMName).raw(), machine.asOutParam())", 164, "VBoxManageMisc.cpp")? {
            Ok(x) => x,
            Err(e) => return Ok(out.com(&e)),
        };
    let entries: Vec<_> = home.entries()?.into_iter().filter(|e| e.uuid != entry.uuid).collect();
    home.save_entries(&entries)?;
    home.set_runtime(&entry.uuid, None)?;
    if args.iter().any(|a| a == "--delete" || a == "-delete") {
        if let Some(dir) = entry.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        out.progress();
    }
    Ok(0)
}

fn lifecycle_error(m: &Machine, text: String, code: &'static str) -> Com {
    let _ = m;
    Com {
        text,
        code,
        component: "SessionMachine",
        interface: "IMachine",
        context: "LockMachine(a->session, LockType_Shared)",
        line: 0,
        file: "VBoxManageControlVM.cpp",
    }
}

/// `startvm <vm> [--type headless|gui|separate]`. Output texts [U].
pub fn startvm(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    let Some(vm) = args.first() else {
        out.syntax("VM name required", "Usage:\n\nVBoxManage startvm <uuid|vmname> [--type=gui|headless|separate]\n");
        return Ok(2);
    };
    let (entry, mut m) =
        match home.find(vm, "FindMachine(Bstr(VMName).raw(), machine.asOutParam())", 0, "VBoxManageMisc.cpp")? {
            Ok(x) => x,
            Err(e) => return Ok(out.com(&e)),
        };
    let st = home.state(&m);
    if is_online(&st) || crate::home::is_transient(&st) {
        return Ok(out.com(&lifecycle_error(
            &m,
            format!("The machine '{}' is already locked for a session (or being unlocked)", m.name),
            "VBOX_E_INVALID_OBJECT_STATE",
        )));
    }
    out.out(&format!("Waiting for VM \"{}\" to power on...\n", m.name));
    let now = crate::time::now();
    m.state_file = None;
    m.aborted = false;
    vbox::save(&entry.path, &m)?;
    home.set_runtime(&m.uuid, Some(("running", now)))?;
    out.out(&format!("VM \"{}\" has been successfully started.\n", m.name));
    Ok(0)
}

/// `controlvm <vm> pause|resume|poweroff|acpipowerbutton|savestate`. Texts [U].
pub fn controlvm(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    let (Some(vm), Some(action)) = (args.first(), args.get(1)) else {
        out.syntax(
            "Not enough parameters",
            "Usage:\n\nVBoxManage controlvm <uuid|vmname> pause|resume|poweroff|acpipowerbutton|savestate\n",
        );
        return Ok(2);
    };
    let (entry, mut m) = match home.find(
        vm,
        "FindMachine(Bstr(a->argv[0]).raw(), machine.asOutParam())",
        0,
        "VBoxManageControlVM.cpp",
    )? {
        Ok(x) => x,
        Err(e) => return Ok(out.com(&e)),
    };
    let st = home.state(&m);
    if !is_online(&st) {
        out.error(&format!("Machine '{}' is not currently running", m.name));
        return Ok(1);
    }
    let now = crate::time::now();
    let invalid = |out: &mut Out, m: &Machine| {
        out.com(&lifecycle_error(m, format!("Invalid machine state: {}", stringify(&st)), "VBOX_E_INVALID_VM_STATE"))
    };
    match action.as_str() {
        "pause" if st == "running" => home.set_runtime(&m.uuid, Some(("paused", now)))?,
        "resume" if st == "paused" => home.set_runtime(&m.uuid, Some(("running", now)))?,
        "pause" | "resume" => return Ok(invalid(out, &m)),
        "poweroff" | "acpipowerbutton" | "savestate" => {
            if action == "savestate" {
                m.state_file = Some(format!("Snapshots/{}.sav", crate::time::file_stamp(now)));
            }
            m.last_state_change = now;
            vbox::save(&entry.path, &m)?;
            home.set_runtime(&m.uuid, None)?;
            if action != "acpipowerbutton" {
                out.progress();
            }
        }
        other => {
            out.syntax(
                &format!("Invalid parameter '{other}'"),
                "Usage:\n\nVBoxManage controlvm <uuid|vmname> pause|resume|poweroff|acpipowerbutton|savestate\n",
            );
            return Ok(2);
        }
    }
    Ok(0)
}
