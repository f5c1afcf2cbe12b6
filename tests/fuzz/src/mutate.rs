//! A small deterministic mutator for the stable driver: no coverage feedback, so the sequence of
//! inputs depends only on the seed and the pool. That is what lets the driver regenerate the
//! input a crashed child process was running from its step number alone.
//!
//! Mutations: bit flips, interesting bytes, deleted / duplicated / spliced ranges, XML and JSON
//! tokens, deep nesting, many attributes, truncation and extreme numbers; one to four per input,
//! applied to a random pool file.

/// SplitMix64: tiny, fast, and good enough to drive mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // The modulo bias is irrelevant for fuzzing; u64 -> usize cannot lose bits below n.
        (self.next_u64() % n as u64) as usize
    }
    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// FNV-1a: a stable 64-bit hash for seeds per target and artifact names.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Bytes worth planting: XML and JSON delimiters, NUL, a lone UTF-8 continuation byte.
const BYTES: &[u8] = b"\0<>/='\"&;!?[]-: \t\r\n{},\\\x80\xff";

/// Tokens that steer the parsers into their interesting corners.
const TOKENS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</a>",
    "<a>",
    "<a/>",
    "&amp;",
    "&lt;",
    "&#x41;",
    "&#0;",
    "&#x110000;",
    "&bogus;",
    "&",
    "'",
    "\"",
    "<![CDATA[x]]>",
    "<![CDATA[",
    "<!--c-->",
    "<!--",
    "<?xml version='1.0' encoding='UTF-8'?>",
    "<?pi x?>",
    "<!DOCTYPE a [<!ENTITY e 'x'>]>",
    "&e;",
    "\u{feff}",
    " xmlns='urn:x'",
    " xmlns:p='urn:x'",
    "<p:name>",
    " a='1'",
    " a=\"1\"",
    " a=1",
    " a",
    "<name>s</name>",
    "<name></name>",
    "<description>d</description>",
    "<state>running</state>",
    "<state>disk-snapshot</state>",
    "<state>shutoff</state>",
    "<state>bogus</state>",
    "<creationTime>1</creationTime>",
    "<creationTime>-1</creationTime>",
    "<parent><name>p</name></parent>",
    "<memory snapshot='external' file='/m'/>",
    "<memory snapshot='internal'/>",
    "<disks><disk name='vda' snapshot='external' type='network'><source protocol='rbd' name='p/i'><host name='h' port='1'/></source></disk></disks>",
    "<disk name='vda'/>",
    "<disk name='vda' snapshot='no'/>",
    "<driver type='qcow2'><metadata_cache><max_size unit='bytes'>1</max_size></metadata_cache></driver>",
    "<domain type='kvm'><name>d</name><uuid>9d37b878-a7cc-9f9a-b78f-49b3abad25a8</uuid></domain>",
    "<domain><uuid>9d37b878a7cc9f9ab78f49b3abad25a8</uuid></domain>",
    "<uuid>zz</uuid>",
    "<inactiveDomain type='kvm'/>",
    "<cookie><x/></cookie>",
    "<active>1</active>",
    "<active>0</active>",
    "<graphics type='vnc' passwd='secret'/>",
    " passwd='",
    "\tpasswd = 'x'",
    "<memory unit='KB'>18446744073709551615</memory>",
    "<memory unit='T'>99999999999</memory>",
    "<currentMemory unit='b'>1</currentMemory>",
    "<vcpu>4294967296</vcpu>",
    "<devices><disk><target dev='vda'/></disk></devices>",
    "<domainsnapshot>",
    "</domainsnapshot>",
    "<virtplugSnapshotBundle version='1'>",
    "<current name='s'/>",
    "\n  <checksum type='sha256'>",
    "{",
    "}",
    "[",
    "]",
    "\"xml\":",
    "\"xmls\":[",
    "\"flags\":4294967295",
    "\"flags\":-1",
    "\"flags\":1.5",
    "\"current\":null",
    "\"migration\":\"m\"",
    "\"dry_run\":true",
    "null",
    "\\u0000",
    "\\ud800",
    "\\\"",
    "1e999",
    // Whitespace and characters that escaping and re-indentation must carry unchanged.
    "\r",
    "\r\n",
    "\t",
    "&#13;",
    "&#9;",
    "&#10;",
    "&#x20;",
    "&quot;",
    "&apos;",
    "&gt;",
    "]]>",
    "\u{85}",
    "\u{2028}",
    "\u{1F600}",
];

/// Replacements for a run of whitespace (re-indentation of verbatim subtrees depends on it).
const SPACES: &[&str] = &["", " ", "\t", "\n", "\n\n", "\r\n", "\n\t ", "        ", "\n  \n    "];

/// Replacements for a run of digits.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e400",
    "0x10",
    "+1",
    " 1 ",
];

/// Element names for nesting.
const NAMES: &[&str] = &["a", "domain", "disk", "devices", "name", "p:x", "domainsnapshot"];

/// Produces inputs from a pool of files.
#[derive(Debug)]
pub struct Mutator<'a> {
    rng: Rng,
    pool: &'a [Vec<u8>],
    max_len: usize,
}

impl<'a> Mutator<'a> {
    /// A mutator over `pool` (may be empty); inputs are clipped to `max_len` bytes.
    pub fn new(seed: u64, pool: &'a [Vec<u8>], max_len: usize) -> Self {
        Self { rng: Rng::new(seed), pool, max_len }
    }

    /// The next input: a pool file with one to four mutations.
    pub fn next_input(&mut self) -> Vec<u8> {
        let mut buf = if self.pool.is_empty() { Vec::new() } else { self.rng.pick(self.pool).clone() };
        let rounds = 1 + self.rng.below(4);
        for _ in 0..rounds {
            self.mutate_once(&mut buf);
        }
        buf.truncate(self.max_len);
        buf
    }

    /// A position in `0..=buf.len()`, half the time just after a `>` (between markup).
    fn pos(&mut self, buf: &[u8]) -> usize {
        let p = self.rng.below(buf.len() + 1);
        if self.rng.below(2) == 0 {
            if let Some(i) = buf[p..].iter().position(|b| *b == b'>') {
                return p + i + 1;
            }
        }
        p
    }

    /// A random range `(start, len)` of `buf`, usually short.
    fn range(&mut self, buf: &[u8]) -> (usize, usize) {
        let start = self.rng.below(buf.len() + 1);
        let room = buf.len() - start;
        let cap = if self.rng.below(8) == 0 { room } else { room.min(64) };
        (start, self.rng.below(cap + 1))
    }

    fn insert(buf: &mut Vec<u8>, at: usize, bytes: &[u8]) {
        buf.splice(at..at, bytes.iter().copied());
    }

    fn mutate_once(&mut self, buf: &mut Vec<u8>) {
        match self.rng.below(14) {
            0 if !buf.is_empty() => {
                let i = self.rng.below(buf.len());
                buf[i] ^= 1 << self.rng.below(8);
            }
            1 if !buf.is_empty() => {
                let i = self.rng.below(buf.len());
                buf[i] = *self.rng.pick(BYTES);
            }
            2 => {
                let (start, len) = self.range(buf);
                buf.drain(start..start + len);
            }
            3 => {
                let (start, len) = self.range(buf);
                let copy = buf[start..start + len].to_vec();
                let at = self.pos(buf);
                let times = if self.rng.below(4) == 0 { 1 + self.rng.below(64) } else { 1 };
                Self::insert(buf, at, &copy.repeat(times));
            }
            4 if !self.pool.is_empty() => {
                let other = self.rng.pick(self.pool);
                let (start, len) = self.range(other);
                let at = self.pos(buf);
                Self::insert(buf, at, &other[start..start + len]);
            }
            5 if !self.pool.is_empty() => {
                // Cross-over: our head, another file's tail.
                let other = self.rng.pick(self.pool);
                let cut = self.rng.below(buf.len() + 1);
                let from = self.rng.below(other.len() + 1);
                buf.truncate(cut);
                buf.extend_from_slice(&other[from..]);
            }
            6 | 7 => {
                let token = self.rng.pick(TOKENS).as_bytes();
                let at = self.pos(buf);
                Self::insert(buf, at, token);
            }
            8 => self.nest(buf),
            9 => self.attributes(buf),
            10 => {
                let at = self.rng.below(buf.len() + 1);
                buf.truncate(at);
            }
            11 => self.number(buf),
            12 => self.whitespace(buf),
            _ => {
                let at = self.pos(buf);
                let b = *self.rng.pick(BYTES);
                Self::insert(buf, at, &[b]);
            }
        }
    }

    /// Deep nesting: balanced (a well-formed subtree, which reaches tree teardown) or only opened.
    fn nest(&mut self, buf: &mut Vec<u8>) {
        let depth = *self.rng.pick(&[2usize, 16, 128, 1024, 4096, 30_000]);
        let name = self.rng.pick(NAMES);
        let open = format!("<{name}>");
        let mut piece = open.repeat(depth);
        if self.rng.below(4) != 0 {
            piece.push_str(&format!("</{name}>").repeat(depth));
        }
        let at = self.pos(buf);
        Self::insert(buf, at, piece.as_bytes());
    }

    /// Many attributes on one start tag (distinct names, or one name repeated).
    fn attributes(&mut self, buf: &mut Vec<u8>) {
        let count = *self.rng.pick(&[4usize, 64, 512, 4096]);
        let same = self.rng.below(4) == 0;
        let mut piece = String::new();
        for i in 0..count {
            if same {
                piece.push_str(" a='v'");
            } else {
                piece.push_str(&format!(" a{i}='v'"));
            }
        }
        // Right after an element name when there is one, so the attributes land in a tag.
        let from = self.rng.below(buf.len() + 1);
        let at = buf[from..]
            .iter()
            .position(|b| *b == b'<')
            .map(|i| from + i + 1)
            .and_then(|s| buf[s..].iter().position(|b| !b.is_ascii_alphanumeric()).map(|n| s + n))
            .unwrap_or(from);
        Self::insert(buf, at, piece.as_bytes());
    }

    /// Replaces a run of whitespace (or the empty run at a position) with other whitespace.
    fn whitespace(&mut self, buf: &mut Vec<u8>) {
        let from = self.rng.below(buf.len() + 1);
        let start = buf[from..].iter().position(u8::is_ascii_whitespace).map_or(from, |i| from + i);
        let len = buf[start..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let with = self.rng.pick(SPACES).as_bytes();
        buf.splice(start..start + len, with.iter().copied());
    }

    /// Replaces a run of digits with an extreme number.
    fn number(&mut self, buf: &mut Vec<u8>) {
        let from = self.rng.below(buf.len() + 1);
        let Some(start) = buf[from..].iter().position(u8::is_ascii_digit).map(|i| from + i) else { return };
        let len = buf[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        let with = self.rng.pick(NUMBERS).as_bytes();
        buf.splice(start..start + len, with.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs() {
        let pool = vec![b"<a><b x='1'>t</b></a>".to_vec(), b"{\"xml\":\"<a/>\"}".to_vec()];
        let run = |seed| {
            let mut m = Mutator::new(seed, &pool, 1 << 20);
            (0..200).map(|_| m.next_input()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn inputs_are_clipped() {
        let pool = vec![vec![b'<'; 100]];
        let mut m = Mutator::new(1, &pool, 50);
        assert!((0..500).all(|_| m.next_input().len() <= 50));
    }

    #[test]
    fn empty_pool_works() {
        let mut m = Mutator::new(3, &[], 1 << 16);
        for _ in 0..200 {
            m.next_input();
        }
    }
}
