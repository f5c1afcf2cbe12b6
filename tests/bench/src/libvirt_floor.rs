//! `libvirt-floor <socket>`: the least any server of libvirt's protocol pays per call on this
//! machine, for the libvirt-wire section's floor. It accepts connections on a unix socket and,
//! on each, reads one length-prefixed packet (libvirt's framing: a 4-byte big-endian length that
//! counts itself) and writes it back, on one blocking thread per connection: no decoding, no
//! store, no reply to build. What its CPU per round trip measures is the socket's system calls
//! and the wake-ups every server's reply pays too; virtplugd's CPU above it is its own work.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
};

use anyhow::Result;

/// Serves until killed.
pub fn serve(args: &[String]) -> Result<()> {
    crate::http_floor::serve_each(args, echo)
}

/// Writes each packet on `conn` back until the client closes it.
fn echo(mut conn: UnixStream) -> std::io::Result<()> {
    let mut packet = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if conn.read_exact(&mut len).is_err() {
            return Ok(());
        }
        let n = (u32::from_be_bytes(len) as usize).clamp(4, 1 << 20);
        packet.clear();
        packet.extend_from_slice(&len);
        packet.resize(n, 0);
        conn.read_exact(&mut packet[4..])?;
        conn.write_all(&packet)?;
    }
}
