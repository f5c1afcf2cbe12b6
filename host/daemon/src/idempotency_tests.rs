//! Unit tests of the kept answers: key syntax, the four outcomes of `begin`, what is kept,
//! eviction by count and bytes, expiry, and reading the answers back from the state directory.

use super::*;

fn outcome(status: u16, body: &str) -> Outcome {
    Outcome { status, headers: vec![("content-type".into(), "application/json".into())], body: body.into() }
}

fn limits(max_entries: usize, max_bytes: usize) -> Limits {
    Limits { max_entries, max_bytes, ..Limits::default() }
}

#[test]
fn a_key_is_one_to_255_visible_ascii_characters() {
    let check = |given: &[u8], kept: bool| {
        let v = HeaderValue::from_bytes(given).unwrap();
        assert_eq!(accepted_key(&v).is_some(), kept, "{given:?}");
    };
    check(b"k", true);
    check(b"7f9c2ba4-e88f-11e0-9a5e-000c29b1e5f0", true);
    check("a".repeat(255).as_bytes(), true);
    check("a".repeat(256).as_bytes(), false);
    check(b"", false);
    check(b"has space", false);
    check(b"tab\there", false);
    check("caf\u{e9}".as_bytes(), false);
}

#[test]
fn the_first_runs_a_retry_replays_another_request_is_refused() {
    let store = Store::in_memory(Limits::default());
    assert_eq!(store.begin("s", "f1"), Begin::Run);
    assert_eq!(store.begin("s", "f1"), Begin::InProgress);
    assert_eq!(store.begin("s", "f2"), Begin::Mismatch);
    store.finish("s", Some(outcome(201, "{\"name\":\"1\"}")));
    assert_eq!(store.begin("s", "f1"), Begin::Replay(outcome(201, "{\"name\":\"1\"}")));
    assert_eq!(store.begin("s", "f2"), Begin::Mismatch);
    // Another scope is another key.
    assert_eq!(store.begin("t", "f2"), Begin::Run);
    // An answer not kept frees the key: the retry runs.
    store.finish("t", None);
    assert_eq!(store.begin("t", "f1"), Begin::Run);
}

#[test]
fn answers_saying_nothing_happened_are_not_kept() {
    let l = Limits::default();
    let err = |code: u32| format!("{{\"code\":{code},\"name\":\"x\",\"message\":\"m\",\"detail\":\"d\"}}");
    assert!(keep(&outcome(201, "{}"), &l));
    assert!(keep(&outcome(202, "{}"), &l));
    assert!(keep(&outcome(404, &err(codes::NO_DOMAIN)), &l));
    assert!(keep(&outcome(409, &err(codes::OPERATION_INVALID)), &l));
    assert!(!keep(&outcome(409, &err(codes::OPERATION_TIMEOUT)), &l));
    assert!(!keep(&outcome(408, &err(codes::INVALID_ARG)), &l));
    assert!(!keep(&outcome(500, &err(codes::INTERNAL_ERROR)), &l));
    assert!(!keep(&outcome(502, &err(codes::AUTH_FAILED)), &l));
    assert!(keep(&outcome(200, &"x".repeat(l.max_body)), &l));
    assert!(!keep(&outcome(200, &"x".repeat(l.max_body + 1)), &l));
}

#[test]
fn the_oldest_answers_go_first_past_the_entry_cap() {
    let store = Store::in_memory(limits(3, usize::MAX));
    for s in ["a", "b", "c", "d"] {
        assert_eq!(store.begin(s, "f"), Begin::Run);
        store.finish(s, Some(outcome(201, s)));
    }
    assert_eq!(store.len(), 3);
    assert_eq!(store.begin("a", "f"), Begin::Run, "a was evicted");
    store.finish("a", None);
    for s in ["b", "c", "d"] {
        assert_eq!(store.begin(s, "f"), Begin::Replay(outcome(201, s)));
    }
}

#[test]
fn the_oldest_answers_go_first_past_the_byte_cap_but_never_a_running_one() {
    let store = Store::in_memory(limits(100, 10));
    assert_eq!(store.begin("running", "f"), Begin::Run);
    for s in ["a", "b", "c"] {
        assert_eq!(store.begin(s, "f"), Begin::Run);
        store.finish(s, Some(outcome(201, "12345")));
    }
    assert_eq!(store.len(), 3, "a went; b, c and the running one stay");
    assert_eq!(store.begin("running", "f"), Begin::InProgress);
    assert_eq!(store.begin("a", "f"), Begin::Run);
    assert_eq!(store.begin("c", "f"), Begin::Replay(outcome(201, "12345")));
}

#[test]
fn an_expired_answer_is_forgotten() {
    let store = Store::in_memory(Limits { ttl: Duration::ZERO, ..Limits::default() });
    assert_eq!(store.begin("s", "f1"), Begin::Run);
    store.finish("s", Some(outcome(201, "{}")));
    assert_eq!(store.begin("s", "f2"), Begin::Run, "expired: the key is free, whatever the request");
}

#[test]
fn kept_answers_survive_a_restart_and_expired_ones_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::load(tmp.path(), Limits::default());
    assert_eq!(store.begin("s", "f"), Begin::Run);
    store.finish("s", Some(outcome(202, "{\"id\":1}")));
    assert_eq!(store.begin("running", "f"), Begin::Run);
    let files = || std::fs::read_dir(tmp.path().join("idempotency")).unwrap().count();
    assert_eq!(files(), 1, "only kept answers are written");
    drop(store);

    let again = Store::load(tmp.path(), Limits::default());
    assert_eq!(again.begin("s", "f"), Begin::Replay(outcome(202, "{\"id\":1}")));
    assert_eq!(again.begin("s", "other"), Begin::Mismatch);
    assert_eq!(again.begin("running", "f"), Begin::Run, "a request in flight at the stop left nothing");
    drop(again);

    let expired = Store::load(tmp.path(), Limits { ttl: Duration::ZERO, ..Limits::default() });
    assert!(expired.is_empty());
    assert_eq!(files(), 0, "the expired file is removed");
}
