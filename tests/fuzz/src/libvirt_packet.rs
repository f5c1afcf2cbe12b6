//! virtplugd's libvirt RPC decoding: a stream of packets as a client sends them on the libvirt
//! socket — the length word checked ([`packet::body_len`]), the header parsed, then the payload
//! decoded as the arguments of the procedure the header names (`proto::decode_args`, the same
//! generated decoders the daemon's handlers use) and as an error body.

use virtplug_libvirt_rpc::{
    packet,
    proto::{self, RemoteError},
    xdr,
};

/// The fuzz target.
pub fn target(data: &[u8]) {
    let mut rest = data;
    while rest.len() >= packet::LEN_BYTES {
        let (len, tail) = rest.split_at(packet::LEN_BYTES);
        let Ok(n) = packet::body_len([len[0], len[1], len[2], len[3]]) else { return };
        // A short stream is what a client that hangs up mid-packet sends: decode what is there.
        let body = &tail[..n.min(tail.len())];
        rest = &tail[body.len()..];
        let Ok((header, payload)) = packet::parse(body) else { continue };
        let _ = proto::decode_args(header.proc_, payload);
        let _ = xdr::from_bytes::<RemoteError>(payload);
    }
}
