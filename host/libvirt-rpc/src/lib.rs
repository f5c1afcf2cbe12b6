//! libvirt's RPC protocol as data: the XDR encoding ([`xdr`]), the types and numbers generated
//! from libvirt's protocol definitions ([`proto`], from `protocol/*.x`), and packets ([`packet`]:
//! length word, header, payload, error replies).
//!
//! This crate owns the bytes on the wire and nothing else: it opens no socket, knows no host or
//! plugin, and never panics on input (every decoder is bounded and a fuzz target).

pub mod packet;
pub mod xdr;

#[cfg(test)]
mod codegen;

/// Types and constants generated from `protocol/*.x` (see `codegen.rs`).
#[rustfmt::skip]
#[path = "generated.rs"]
pub mod proto;
