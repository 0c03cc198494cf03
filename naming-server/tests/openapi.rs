//! The committed `openapi/naming-server.json` must equal the document the
//! code generates. `UPDATE_OPENAPI=1 cargo nextest run -p naming-server
//! --test openapi` rewrites it.

use std::path::PathBuf;

#[test]
fn committed_spec_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/naming-server.json");
    let generated = naming_server::openapi::spec_json();
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

#[test]
fn spec_documents_every_route() {
    let spec = naming_server::openapi::spec();
    for path in [
        "/register_storage",
        "/nodes/{node_id}/heartbeat",
        "/nodes",
        "/files/init",
        "/distributions",
        "/distributions/{job_id}",
        "/distributions/{job_id}/progress",
        "/files",
        "/files/{file_id}",
        "/files/{file_id}/size",
        "/files/{file_id}/chunks",
        "/files/{file_id}/finalize",
        "/files/{file_id}/chunks/{index}",
        "/health",
        "/metrics",
    ] {
        assert!(
            spec.paths.paths.contains_key(path),
            "{path} is not documented"
        );
    }
}
