//! The committed `openapi/naming-server.json` must equal the document the
//! code generates. `UPDATE_OPENAPI=1 cargo nextest run -p naming-server
//! --test openapi` rewrites it. (`tests/tests/openapi.rs` checks the spec
//! a running server serves, and validates it with real tools.)

use std::path::PathBuf;

#[test]
fn committed_spec_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/naming-server.json");
    let generated = naming_server::http::spec_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write openapi/naming-server.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date: run `UPDATE_OPENAPI=1 cargo nextest run -p naming-server --test openapi` and commit it",
        path.display()
    );
}
