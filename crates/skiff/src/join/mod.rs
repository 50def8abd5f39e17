//! Several servers, one cluster, as k3s does it: the first server (`--cluster-init`, or no
//! `--server`) makes the cluster CA and a join token, `DATA_DIR/token`; another server, started
//! with `--server URL --token TOKEN` on the same datastore, fetches the CA from it ([`fetch`])
//! and issues its own certificates from it, so that every server trusts every other's clients
//! and kubeconfigs. Every server admits further servers with the same token. Node agents
//! (`skiff agent`) join with the same token, and get a node's client certificate, not the CA.

mod fetch;
mod token;

use anyhow::Context;
use clap::Args;
use std::path::Path;
use tracing::info;

use crate::datastore::DatastoreArgs;
use crate::files::write_private;
use store::Store;
use token::Token;

#[derive(Args, Debug)]
pub struct JoinArgs {
    /// Found a new cluster: make its CA and its join token (DATA_DIR/token). This is what a
    /// server started without --server does; the flag is k3s's name for it.
    #[arg(long, conflicts_with = "server")]
    pub cluster_init: bool,
    /// Join the cluster of the server at this URL (https://HOST:6443), fetching its CA with
    /// --token. The servers must share a datastore (--datastore-endpoint).
    #[arg(long, requires = "token")]
    pub server: Option<String>,
    /// The cluster's join token (DATA_DIR/token on one of its servers). On a server founding
    /// the cluster: the password to put in its token, instead of a random one.
    #[arg(long, env = "SKIFF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Before the certificates are made: a joining server without the cluster's CA fetches it from
/// `--server`; one that has a CA checks that it is the token's.
pub async fn fetch_ca(args: &JoinArgs, datastore: &DatastoreArgs, tls_dir: &Path) -> anyhow::Result<()> {
    let Some(server) = &args.server else { return Ok(()) };
    anyhow::ensure!(
        !datastore.datastore_endpoint.is_empty(),
        "joining a cluster (--server) needs the datastore its servers share: add --datastore-endpoint"
    );
    let token = args.token.as_deref().and_then(Token::parse).context(
        "--server needs the cluster's join token in full, K10<hash>::server:<password> (DATA_DIR/token on a \
         server of the cluster), so that this server can check that it joins the right cluster",
    )?;
    let ca_cert = tls_dir.join("ca.crt");
    if ca_cert.exists() {
        let ca = std::fs::read(&ca_cert).with_context(|| format!("reading {}", ca_cert.display()))?;
        anyhow::ensure!(
            token.matches(&ca),
            "{} is not the CA of the cluster the token names: this data directory belongs to another cluster",
            ca_cert.display()
        );
        return Ok(());
    }
    let secrets = fetch::secrets(server, &token).await?;
    write_private(&tls_dir.join("ca.key"), &secrets.ca_key)?;
    std::fs::write(&ca_cert, &secrets.ca_cert).with_context(|| format!("writing {}", ca_cert.display()))?;
    info!(server, "fetched the cluster CA to join the cluster");
    Ok(())
}

/// After the certificates are made: the token this server admits servers with, kept in
/// DATA_DIR/token (readable by root only).
pub fn token(args: &JoinArgs, ca_cert: &Path, data_dir: &Path) -> anyhow::Result<Token> {
    let ca = std::fs::read(ca_cert).with_context(|| format!("reading {}", ca_cert.display()))?;
    let path = data_dir.join("token");
    let token = match args.token.as_deref().map(str::trim) {
        Some(given) => match Token::parse(given) {
            Some(token) if token.matches(&ca) => token,
            Some(_) => anyhow::bail!("--token names another CA than this server's ({})", ca_cert.display()),
            None if given.is_empty() => anyhow::bail!("--token is empty"),
            None => Token::new(&ca, given.to_owned()),
        },
        None => match std::fs::read_to_string(&path).ok().and_then(|text| Token::parse(&text)) {
            // The password stays when the CA is new (a reset data directory).
            Some(kept) => Token::new(&ca, kept.password),
            None => Token::new(&ca, token::random_password()?),
        },
    };
    let text = format!("{token}\n");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        write_private(&path, &text)?;
    }
    info!(path = %path.display(), "servers join this cluster with the token in this file (--server URL --token TOKEN)");
    Ok(token)
}

/// A client certificate for the node of this certificate signing request (PEM), from the first
/// of `servers` that answers.
pub async fn node_credentials(
    servers: &[http::Uri],
    token: &str,
    csr: String,
) -> anyhow::Result<fetch::NodeCredentials> {
    let token = Token::parse(token).context(
        "--token must be the cluster's join token in full, K10<hash>::server:<password> (DATA_DIR/token on a \
         server of the cluster), so that the agent can check that it joins the right cluster",
    )?;
    let mut failures = Vec::new();
    for server in servers {
        match fetch::node_credentials(&server.to_string(), &token, csr.clone()).await {
            Ok(credentials) => {
                info!(%server, "joined the cluster as a node");
                return Ok(credentials);
            }
            Err(e) => failures.push(format!("{server}: {e:#}")),
        }
    }
    anyhow::bail!("no server of the cluster would take this node:\n  {}", failures.join("\n  "))
}

/// Where the datastore records the hash of the CA of the cluster it holds.
const CLUSTER_CA_KEY: &str = "/registry/skiff/cluster-ca-hash";

/// Records this server's CA in a datastore that has none yet, and refuses a datastore that
/// belongs to a cluster with another CA: a second server started without joining would otherwise
/// serve the same objects under certificates the others do not trust.
pub async fn check_datastore(store: &dyn Store, ca_cert: &Path) -> anyhow::Result<()> {
    let ca = std::fs::read(ca_cert).with_context(|| format!("reading {}", ca_cert.display()))?;
    let ours = token::ca_hash(&ca);
    let recorded = match store.get(CLUSTER_CA_KEY).await? {
        Some(pair) => pair.value,
        None => match store.create(CLUSTER_CA_KEY, ours.clone().into()).await {
            Ok(_) => return Ok(()),
            // Another server of a cluster just founded it.
            Err(store::Error::AlreadyExists) => {
                store.get(CLUSTER_CA_KEY).await?.map(|pair| pair.value).unwrap_or_default()
            }
            Err(e) => return Err(e.into()),
        },
    };
    anyhow::ensure!(
        recorded == ours.as_bytes(),
        "the datastore holds a cluster with another CA than this server's ({}): join that cluster with \
         --server URL --token TOKEN (the token is in DATA_DIR/token on one of its servers), or use another \
         --etcd-prefix for a cluster of its own",
        ca_cert.display()
    );
    Ok(())
}
