//! External memory: a running domain's state migrated into a file in libvirt's save-image
//! layout (`qemu_saveimage.h`), so the file is recognisable as libvirt's:
//!
//! ```text
//! 0   magic[16]     "LibvirtQemudPart" while written, "LibvirtQemudSave" once complete
//! 16  u32 version   2
//! 20  u32 data_len  bytes of XML data that follow the header (XML + NUL)
//! 24  u32 was_running
//! 28  u32 compressed  0 (raw stream)
//! 32  u32 cookieOffset 0 (no cookie)
//! 36  u32 unused[15]
//! 96  domain XML, NUL
//! 96+data_len  qemu's migration stream
//! ```
//!
//! Integers are in host byte order, as libvirt writes them. The stream is produced by QMP
//! `migrate` to `exec:cat >> <file>` after the header was written; [`stream_offset`] tells a
//! restore where the stream starts.

use std::{
    fs::{self, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
    time::{Duration, Instant},
};

use serde_json::json;
use virtplug_plugin_sdk::{Error, Result, codes};

use crate::qmp::Qmp;

/// Header size.
pub const HEADER_LEN: u64 = 96;
/// Magic while the image is written.
pub const PARTIAL_MAGIC: &[u8; 16] = b"LibvirtQemudPart";
/// Magic of a complete image.
pub const MAGIC: &[u8; 16] = super::chain::SAVE_MAGIC;

fn io_err(path: &Path, e: &std::io::Error) -> Error {
    Error::new(codes::SYSTEM_ERROR, format!("failed to write memory file '{}': {}", path.display(), super::strerror(e)))
}

fn header(magic: &[u8; 16], data_len: u32, was_running: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN as usize);
    h.extend_from_slice(magic);
    for v in [2u32, data_len, u32::from(was_running), 0, 0] {
        h.extend_from_slice(&v.to_ne_bytes());
    }
    h.resize(HEADER_LEN as usize, 0);
    h
}

/// Where the migration stream of save image `path` starts (checks the magic).
#[allow(dead_code, reason = "for restoring memory snapshots (revert.rs), which lands separately")]
pub fn stream_offset(path: &Path) -> Result<u64> {
    let mut h = [0u8; 96];
    fs::File::open(path).and_then(|mut f| f.read_exact(&mut h)).map_err(|e| {
        Error::new(
            codes::OPERATION_INVALID,
            format!("cannot read memory file '{}': {}", path.display(), super::strerror(&e)),
        )
    })?;
    if &h[..16] != MAGIC {
        return Err(Error::new(
            codes::OPERATION_INVALID,
            format!("memory file '{}' is not a complete libvirt save image", path.display()),
        ));
    }
    let data_len = u32::from_ne_bytes([h[20], h[21], h[22], h[23]]);
    Ok(HEADER_LEN + u64::from(data_len))
}

/// Writes the header and `xml`, migrates the domain's state into `path`, then marks the image
/// complete. qemu ends paused (`postmigrate`); the caller resumes it.
pub fn save(q: &mut Qmp, dom: &str, path: &Path, xml: &str, was_running: bool, timeout: Duration) -> Result<()> {
    let mut data = xml.as_bytes().to_vec();
    data.push(0);
    let data_len = u32::try_from(data.len()).map_err(|_| Error::internal("domain XML too large for a save image"))?;
    {
        let mut f = fs::File::create(path).map_err(|e| io_err(path, &e))?;
        f.write_all(&header(PARTIAL_MAGIC, data_len, was_running)).map_err(|e| io_err(path, &e))?;
        f.write_all(&data).map_err(|e| io_err(path, &e))?;
    }
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::new(codes::OPERATION_FAILED, format!("{what} of domain '{dom}' to '{}' failed: {e}", path.display()))
    };
    // unlimited bandwidth for the dump, as libvirt sets it
    q.execute("migrate-set-parameters", Some(json!({ "max-bandwidth": i64::MAX / 2 })))
        .map_err(|e| failed("migration setup", &e))?;
    let quoted = path.to_string_lossy().replace('\'', "'\\''");
    q.execute("migrate", Some(json!({ "uri": format!("exec:cat >> '{quoted}'") })))
        .map_err(|e| failed("migration", &e))?;
    let deadline = Instant::now() + timeout;
    loop {
        let v = q.execute("query-migrate", None).map_err(|e| failed("migration", &e))?;
        match v.get("status").and_then(|s| s.as_str()).unwrap_or("") {
            "completed" => break,
            "failed" | "cancelled" => {
                let why = v.get("error-desc").and_then(|s| s.as_str()).unwrap_or("unknown error").to_owned();
                return Err(failed("migration", &why));
            }
            _ if Instant::now() > deadline => {
                let _ = q.execute("migrate_cancel", None);
                return Err(failed("migration", &"no completion within the monitor timeout"));
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let mut f = OpenOptions::new().write(true).open(path).map_err(|e| io_err(path, &e))?;
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.write_all(MAGIC))
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(path, &e))
}
