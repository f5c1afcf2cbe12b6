//! Packets: a big-endian length word counting the whole packet (itself included), the 24-byte
//! header ([`Header`]), then the XDR payload. Replies copy the call's program, version,
//! procedure and serial; events and keepalive messages are `VIR_NET_MESSAGE`s.

use crate::{
    proto::{
        KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, RemoteError,
        VIR_NET_ERROR, VIR_NET_MESSAGE, VIR_NET_MESSAGE_MAX, VIR_NET_OK, VIR_NET_REPLY, VirNetMessageHeader,
    },
    xdr::{Reader, Writer, Xdr, XdrError},
};

/// The header of every packet.
pub type Header = VirNetMessageHeader;

/// Bytes of the length word.
pub const LEN_BYTES: usize = 4;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 24;
/// The largest packet either side may send, length word included (libvirt's
/// `VIR_NET_MESSAGE_MAX` plus the word).
pub const MAX_PACKET: usize = LEN_BYTES + VIR_NET_MESSAGE_MAX as usize;

/// libvirt's error levels: errors are always level 2.
pub const LEVEL_ERROR: i32 = 2;

/// Why a packet was refused. Framing errors end the connection (the stream cannot be resynced);
/// a bad header is answered when its first words could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The length word is below the length of a header.
    #[error("packet of {0} bytes is shorter than a header")]
    TooShort(u32),
    /// The length word is over [`MAX_PACKET`].
    #[error("packet of {0} bytes is larger than the maximum {MAX_PACKET}")]
    TooLong(u32),
    /// The header or payload does not decode.
    #[error("malformed packet: {0}")]
    Xdr(#[from] XdrError),
}

/// Validates a length word; returns how many bytes follow it (header and payload).
pub fn body_len(len_word: [u8; LEN_BYTES]) -> Result<usize, PacketError> {
    let len = u32::from_be_bytes(len_word);
    if (len as usize) < LEN_BYTES + HEADER_BYTES {
        return Err(PacketError::TooShort(len));
    }
    if len as usize > MAX_PACKET {
        return Err(PacketError::TooLong(len));
    }
    Ok(len as usize - LEN_BYTES)
}

/// Splits a packet's body (what follows the length word) into header and payload.
pub fn parse(body: &[u8]) -> Result<(Header, &[u8]), PacketError> {
    let mut r = Reader::new(body);
    let header = Header::decode(&mut r)?;
    Ok((header, &body[HEADER_BYTES..]))
}

/// Decodes a call's arguments, refusing trailing bytes.
pub fn args<T: Xdr>(payload: &[u8]) -> Result<T, XdrError> {
    crate::xdr::from_bytes(payload)
}

/// A whole packet: length word, header, payload.
pub fn encode(header: &Header, payload: &impl Xdr) -> Vec<u8> {
    let mut w = Writer::new(vec![0; LEN_BYTES]);
    header.encode(&mut w);
    payload.encode(&mut w);
    let mut bytes = w.into_bytes();
    let len = bytes.len() as u32;
    bytes[..LEN_BYTES].copy_from_slice(&len.to_be_bytes());
    bytes
}

/// A successful reply to `call`.
pub fn reply(call: &Header, ret: &impl Xdr) -> Vec<u8> {
    let h = Header { type_: VIR_NET_REPLY, status: VIR_NET_OK, ..call.clone() };
    encode(&h, ret)
}

/// A successful reply to `call` whose payload is already encoded.
pub fn reply_encoded(call: &Header, payload: &[u8]) -> Vec<u8> {
    let h = Header { type_: VIR_NET_REPLY, status: VIR_NET_OK, ..call.clone() };
    let mut bytes = encode(&h, &());
    bytes.extend_from_slice(payload);
    let len = bytes.len() as u32;
    bytes[..LEN_BYTES].copy_from_slice(&len.to_be_bytes());
    bytes
}

/// An error reply to `call`.
pub fn reply_error(call: &Header, err: &RemoteError) -> Vec<u8> {
    let h = Header { type_: VIR_NET_REPLY, status: VIR_NET_ERROR, ..call.clone() };
    encode(&h, err)
}

/// A remote-program event message (libvirtd sends them with serial 1; clients ignore it).
pub fn event(procedure: i32, msg: &impl Xdr) -> Vec<u8> {
    let h = Header {
        prog: REMOTE_PROGRAM,
        vers: REMOTE_PROTOCOL_VERSION,
        proc_: procedure,
        type_: VIR_NET_MESSAGE,
        serial: 1,
        status: VIR_NET_OK,
    };
    encode(&h, msg)
}

/// A keepalive message (`KEEPALIVE_PROC_PING` or `_PONG`): serial 0, empty payload.
pub fn keepalive(procedure: i32) -> Vec<u8> {
    let h = Header {
        prog: KEEPALIVE_PROGRAM,
        vers: KEEPALIVE_PROTOCOL_VERSION,
        proc_: procedure,
        type_: VIR_NET_MESSAGE,
        serial: 0,
        status: VIR_NET_OK,
    };
    encode(&h, &())
}

/// An error as libvirtd fills it: code, error domain, the full message (with libvirt's prefix
/// for the code), level error, the message again in `str1`, and -1 in the integers.
pub fn error(code: i32, domain: i32, message: impl Into<String>) -> RemoteError {
    let message = message.into();
    RemoteError {
        code,
        domain,
        message: Some(message.clone()),
        level: LEVEL_ERROR,
        dom: None,
        str1: Some(message),
        str2: None,
        str3: None,
        int1: -1,
        int2: -1,
        net: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::proto::{KEEPALIVE_PROC_PONG, REMOTE_PROC_CONNECT_OPEN, RemoteConnectOpenArgs, VIR_NET_CALL};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn decodes_a_measured_connect_open_call() {
        let bytes = hex("00000038 20008086 00000001 00000001 00000000 00000002 00000000
             00000001 0000000f 746573743a2f2f2f64656661756c74 00 00000000");
        let n = body_len(bytes[..4].try_into().unwrap()).unwrap();
        assert_eq!(n, bytes.len() - 4);
        let (h, payload) = parse(&bytes[4..]).unwrap();
        assert_eq!((h.prog, h.vers, h.proc_, h.type_, h.serial, h.status), (REMOTE_PROGRAM, 1, 1, VIR_NET_CALL, 2, 0));
        assert_eq!(h.proc_, REMOTE_PROC_CONNECT_OPEN);
        let a: RemoteConnectOpenArgs = args(payload).unwrap();
        assert_eq!((a.name.as_deref(), a.flags), (Some("test:///default"), 0));
        assert_eq!(reply(&h, &()), hex("0000001c 20008086 00000001 00000001 00000001 00000002 00000000"));
    }

    #[test]
    fn encodes_the_measured_error_and_pong() {
        let call = Header { prog: REMOTE_PROGRAM, vers: 1, proc_: 23, type_: 0, serial: 6, status: 0 };
        let want = hex("00000070 20008086 00000001 00000017 00000001 00000006 00000001
             0000002a 0000000c 00000001 00000010 446f6d61696e206e6f7420666f756e64 00000002 00000000
             00000001 00000010 446f6d61696e206e6f7420666f756e64 00000000 00000000 ffffffff ffffffff 00000000");
        assert_eq!(reply_error(&call, &error(42, 12, "Domain not found")), want);
        assert_eq!(
            keepalive(KEEPALIVE_PROC_PONG),
            hex("0000001c 6b656570 00000001 00000002 00000002 00000000 00000000")
        );
    }

    #[test]
    fn length_words_are_bounded() {
        assert_eq!(body_len(27u32.to_be_bytes()), Err(PacketError::TooShort(27)));
        assert_eq!(body_len(28u32.to_be_bytes()), Ok(24));
        assert_eq!(body_len((MAX_PACKET as u32).to_be_bytes()), Ok(MAX_PACKET - 4));
        assert_eq!(body_len((MAX_PACKET as u32 + 1).to_be_bytes()), Err(PacketError::TooLong(MAX_PACKET as u32 + 1)));
    }
}
