//! Snapshot metadata of a fleet on etcd: owns the etcd backend of the SDK's metadata interface
//! ([`EtcdBackend`], a [`MetadataBackend`](virtplug_plugin_sdk::metadata::MetadataBackend);
//! wrap it in [`Metadata`](virtplug_plugin_sdk::metadata::Metadata) for libvirt's tree rules),
//! the store URI (`etcd://h1:p1,h2:p2/PREFIX`) and the store config file. It holds no tree
//! logic (the SDK's) and does no terminal I/O. The etcd client (and so a protobuf compiler at
//! build time) is compiled only with the `etcd` feature; without it only [`uri`] and [`fleet`]
//! (which then refuses a `store=`) are here.
//!
//! Key layout under `P` (the URI's prefix; host, domain and snapshot names are hex-encoded):
//! - `P/hosts/<host>` = the host's lease id, attached to that lease (every process of a host
//!   joins the same lease, so the lease is the host's identity while it lives);
//! - `P/owner/<dom>` = the owning host, attached to the owner's lease: it vanishes when the
//!   owner's lease expires;
//! - `P/ptr/<dom>` = the id of the live generation, a newline, the host that wrote it, a
//!   newline and an id unique to the write (see "Retries" below); its version is the domain's
//!   generation number
//!   ([`Loaded::generation`](virtplug_plugin_sdk::metadata::Loaded)); apart from the
//!   generations so that a watch of `P/ptr/` ([`watch()`]) sees one event per commit;
//! - `P/dom/<dom>/g/<gid>/s/<name>` = `SEQ\n` + the snapshot's XML (secure, with `<parent>`),
//!   `P/dom/<dom>/g/<gid>/current` = the current snapshot's name.
//!
//! Atomicity. A reader reads the pointer, then the generation it names *at the pointer's read
//! revision*, so it always sees one generation whole. A writer commits in one of two ways:
//! - small (≤ [`CHUNK_OPS`] operations and < 1 MiB, e.g. a create, a revert, a delete of a leaf):
//!   the delta under the live generation in ONE transaction guarded by the pointer's
//!   mod revision and the owner key; the pointer is rewritten in it, so its mod revision moves;
//! - large (an import, a subtree delete, anything past the limits): the whole new tree under a
//!   fresh generation in chunks of ≤ [`CHUNK_OPS`] puts / [`CHUNK_BYTES`] (etcd's defaults are
//!   128 operations and 1.5 MiB per request), each chunk guarded like a delta, then ONE
//!   compare-and-swap switches the pointer and deletes the old generation's prefix. Until the
//!   switch no reader sees the new generation; a writer that dies before it leaves an orphan,
//!   which the next [`EtcdBackend::claim`] (or [`EtcdBackend::collect_orphans`]) deletes.
//!
//! Fencing. One writer per domain: every write transaction compares the owner key's value (this
//! host) AND its lease (this host's lease). A host whose lease expired (paused, partitioned,
//! dead) loses its owner keys with it; its later writes fail those guards and are refused
//! ("host 'h1' lost its lease on the metadata store: it owns no domain and can write no more"),
//! and a new lease can never match the old keys. A domain no host owns is claimed by its next
//! writer in one transaction (exactly one of racing hosts wins); [`EtcdBackend::handover`] moves
//! it to another live host in one transaction, with no copy.
//!
//! Retries. A request the cluster does not answer in time is sent again, but the cluster may
//! have committed the first one all the same. A write whose retry then fails its guards reads
//! the pointer back: if it holds the write's own value (its write id), the first attempt
//! committed and the write succeeded. A handover checks the owner key the same way. So a write
//! that was stored is never reported as refused.
//!
//! Errors: cluster unreachable → SYSTEM_ERROR ("unable to reach the metadata store URI: …");
//! owned by another host → OPERATION_INVALID; lease lost → OPERATION_FAILED.

pub mod fleet;
pub mod uri;

#[cfg(feature = "etcd")]
mod backend;
#[cfg(feature = "etcd")]
mod events;
#[cfg(feature = "etcd")]
mod keys;
#[cfg(feature = "etcd")]
mod watch;

#[cfg(feature = "etcd")]
pub use backend::{CHUNK_BYTES, CHUNK_OPS, EtcdBackend, lease_lost, owned_by};
pub use fleet::{Fleet, FleetStore, FleetWatch};
pub use uri::{StoreConfig, StoreUri, TlsFiles};
#[cfg(feature = "etcd")]
pub use watch::{RemoteChange, Watch, watch};
