//! A cluster whose naming server and storage nodes all serve HTTPS with a
//! certificate from a CA made at test time, which every client trusts
//! through `DFS_CA_CERT`.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use dfs_tests::{TestCluster, TlsFiles};

use super::{KIB64, TOKEN, create, read_back};

/// A CA, and a certificate it signed for 127.0.0.1 and localhost, written
/// under `dir`.
fn test_ca(dir: &Path) -> Result<TlsFiles> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "dfs test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.distinguished_name.push(DnType::CommonName, "dfs node");
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca)?;
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca: dir.join("ca.pem"),
    };
    std::fs::write(&files.cert, cert.pem())?;
    std::fs::write(&files.key, key.serialize_pem())?;
    std::fs::write(&files.ca, ca.pem())?;
    Ok(files)
}

#[tokio::test]
async fn an_https_cluster_with_a_private_ca_round_trips() -> Result<()> {
    let certs = tempfile::tempdir()?;
    let cluster = TestCluster::builder()
        .storage_nodes(3)
        .token(TOKEN)
        .tls(test_ca(certs.path())?)
        .start()
        .await?;
    ensure!(cluster.naming_url().starts_with("https://"));
    let nodes = cluster.get_json("/nodes").await?;
    for node in nodes["nodes"].as_array().context("nodes")? {
        let url = node["url"].as_str().context("url")?;
        ensure!(url.starts_with("https://"), "{url}");
    }
    let local = create(&cluster, "tls.bin", 5 * KIB64 + 1, 3).await?;
    read_back(&cluster, "tls.bin", &local).await?;
    ensure!(cluster.check_replicas("tls.bin", &local, 3).await? == 6);

    // HTTPS only, and only for clients that trust the CA.
    let plain = cluster.naming_url().replacen("https://", "http://", 1);
    let answered = reqwest::get(format!("{plain}/health")).await;
    ensure!(
        answered.as_ref().map_or(true, |r| !r.status().is_success()),
        "plain HTTP was served: {answered:?}"
    );
    let untrusting = reqwest::get(format!("{}/health", cluster.naming_url())).await;
    ensure!(
        untrusting.is_err(),
        "a client without the CA got {untrusting:?}"
    );
    // dfs-client's own TLS setup verifies the same way.
    let access = dfs_client::ClusterAccess::new(Some(TOKEN));
    let untrusting = dfs_client::NamingClient::new(cluster.naming_url(), &access)?
        .nodes()
        .await;
    ensure!(
        untrusting
            .as_ref()
            .is_err_and(|e| dfs_client::error_chain(e)
                .to_lowercase()
                .contains("certificate")),
        "dfs-client without the CA got {untrusting:?}"
    );
    Ok(())
}
