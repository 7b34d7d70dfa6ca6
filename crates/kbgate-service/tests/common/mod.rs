//! The one `kbgate.toml` the service tests run on: the simulator as Confluence, SQLite in a
//! temporary directory, acme reading KB and initech reading API.

use std::path::Path;

use confluence_sim::SimHandle;

/// The back-channel API key of the test config.
pub const API_KEY: &str = "service-test-api-key-0123456789abcdefghij";

/// Writes the secrets and `kbgate.toml` into `dir`. `acme_domains` lists acme's domains (TOML
/// strings); `sync` is the `[sync]` section's body (empty: the defaults). The file is written
/// aside and renamed, so a running service never reads half of it.
#[allow(dead_code)] // not every test binary uses both forms
pub fn write_config(dir: &Path, sim: &SimHandle, acme_domains: &str, sync: &str) {
    write_config_full(dir, sim, acme_domains, sync, "", "");
}

/// [`write_config`] with `brand` as the body of `[portal.brand]`.
#[allow(dead_code)] // not every test binary brands its portal
pub fn write_config_branded(
    dir: &Path,
    sim: &SimHandle,
    acme_domains: &str,
    sync: &str,
    brand: &str,
) {
    write_config_full(dir, sim, acme_domains, sync, "", brand);
}

/// [`write_config`], with `portal` added to the `[portal]` section's body.
#[allow(dead_code)] // not every test binary adjusts [portal]
pub fn write_config_with(
    dir: &Path,
    sim: &SimHandle,
    acme_domains: &str,
    sync: &str,
    portal: &str,
) {
    write_config_full(dir, sim, acme_domains, sync, portal, "");
}

/// [`write_config`] with `portal` added to `[portal]` and `brand` as `[portal.brand]`'s body.
pub fn write_config_full(
    dir: &Path,
    sim: &SimHandle,
    acme_domains: &str,
    sync: &str,
    portal: &str,
    brand: &str,
) {
    let creds = sim.service_account();
    std::fs::write(dir.join("token"), &creds.api_token).expect("token");
    std::fs::write(dir.join("api-key"), API_KEY).expect("api key");
    std::fs::write(
        dir.join("embed-secret"),
        "service-test-embed-secret-0123456789abcdef",
    )
    .expect("embed secret");
    let text = format!(
        r#"
[confluence]
base_url = "{base}"
email = "{email}"
api_token_file = "{dir}/token"
requests_per_second = 0

[store]
url = "sqlite://{dir}/kb.db"
data_dir = "{dir}/data"

[sync]
{sync}

[portal]
listen = "127.0.0.1:0"
outbox_dir = "{dir}/outbox"
{portal}

[embed]
issuer = "https://app.example.com"
audience = "kbgate"
algorithm = "HS256"
secret_file = "{dir}/embed-secret"
api_key_file = "{dir}/api-key"

[[audience]]
name = "acme"
domains = [{acme_domains}]
spaces = ["KB"]

[[audience]]
name = "initech"
domains = ["initech.io"]
spaces = ["API"]

[portal.brand]
{brand}
"#,
        base = sim.base_url(),
        email = creds.email,
        dir = dir.display(),
    );
    let tmp = dir.join("kbgate.toml.new");
    std::fs::write(&tmp, text).expect("config");
    std::fs::rename(&tmp, dir.join("kbgate.toml")).expect("rename");
}
