//! The committed `openapi/storage-server.json` must match the spec the code
//! generates. `UPDATE_OPENAPI=1 cargo test -p storage-server --test openapi`
//! rewrites it.

use std::path::PathBuf;

#[test]
fn committed_spec_matches_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/storage-server.json");
    let generated = storage_server::http::spec_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write openapi/storage-server.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date; run `UPDATE_OPENAPI=1 cargo test -p storage-server --test openapi`",
        path.display()
    );
}
