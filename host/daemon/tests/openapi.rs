//! The checked-in OpenAPI document equals the one generated from the code (and served at
//! `/openapi.json`). Regenerate with `UPDATE_OPENAPI=1 cargo test -p virtplug-daemon --test openapi`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

#[test]
fn checked_in_openapi_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wire/openapi.json");
    let generated = virtplug_daemon::openapi::document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "host/wire/openapi.json differs from the code; run UPDATE_OPENAPI=1 cargo test -p virtplug-daemon --test openapi and commit it"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in ["/v1/domains/{dom}/snapshots", "/v1/migrations", "/v1/events", "/v1/tasks/{id}"] {
        assert!(paths.contains_key(p), "{p} documented");
    }
}
