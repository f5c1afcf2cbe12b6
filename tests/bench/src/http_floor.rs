//! `http-floor <socket>`: the least any HTTP server on this machine pays per keep-alive request,
//! for the daemon section's socket floor. It listens on a unix socket and answers every request
//! head with the same fixed, bodiless `200` (with an `ETag`, so the raw clients accept it), one
//! blocking thread per connection: no parsing beyond finding the head's end, no routing, no async
//! runtime, no logging. What remains is the socket's system calls and the scheduling of the
//! clients and the server on this machine's cores, which every server's answer pays too.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::{UnixListener, UnixStream},
};

use anyhow::{Context, Result};

/// The one answer.
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\netag: \"g0-0\"\r\ncontent-length: 0\r\n\r\n";

/// Serves until killed.
pub fn serve(args: &[String]) -> Result<()> {
    serve_each(args, answer)
}

/// A floor server: on the unix socket `args[0]`, each connection on a thread of its own,
/// handled by `handle`, until killed.
pub fn serve_each(args: &[String], handle: fn(UnixStream) -> std::io::Result<()>) -> Result<()> {
    let path = args.first().context("socket path")?;
    let listener = UnixListener::bind(path).with_context(|| format!("binding {path}"))?;
    for conn in listener.incoming() {
        let conn = conn?;
        std::thread::spawn(move || handle(conn));
    }
    Ok(())
}

/// Answers each request head on `conn` until the client closes it.
fn answer(conn: UnixStream) -> std::io::Result<()> {
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if line == b"\r\n" {
            writer.write_all(ANSWER)?;
        }
    }
}
